"""The labels and annotations execplanner puts on what it creates: one place for them.

Everything the operator creates carries the UID of the plan it belongs to, so that it
can be found again after a restart and so that the planner can tell our pods from
anyone else's.
"""

DOMAIN = "execplanner.io"
PLAN_UID = f"{DOMAIN}/plan-uid"        # label: the owning ExecutionPlan's metadata.uid
PLAN_NAME = f"{DOMAIN}/plan"           # label: the owning ExecutionPlan's name (for people)
ROLE = f"{DOMAIN}/role"                # label: "placeholder" (holds capacity) or "task"
ROLE_PLACEHOLDER = "placeholder"
ROLE_TASK = "task"
WORKLOAD = f"{DOMAIN}/workload"        # label: on a chart task's pods, "<kind>-<name>" of their workload
