"""The API group, and the labels and annotations execplanner puts on what it creates: one
place for them.

Everything the operator creates carries the UID of the plan it belongs to, so that it
can be found again after a restart and so that the planner can tell our pods from
anyone else's.
"""

DOMAIN = "execplanner.io"
GROUP, VERSION = DOMAIN, "v1alpha1"  # the CRDs' API group and version
PLAN_UID = f"{DOMAIN}/plan-uid"        # label: the owning ExecutionPlan's metadata.uid
PLAN_NAME = f"{DOMAIN}/plan"           # label: the owning ExecutionPlan's name (for people)
ROLE = f"{DOMAIN}/role"                # label: "task" (a task's pods; they also hold its capacity)
ROLE_TASK = "task"
WORKLOAD = f"{DOMAIN}/workload"        # label: on a chart task's pods, "<kind>-<name>" of their workload
SESSION = f"{DOMAIN}/session"          # label: on a notebook session's pod, Service and Secret, its number (1, 2, ...)
# Annotations on every task pod, RFC 3339 to the second: the booked start its init container
# waits for, and the booking's end (the kwok stages of the local cluster read both, standing
# in for the kubelet's init container and activeDeadlineSeconds).
START_AT = f"{DOMAIN}/start-at"
END_AT = f"{DOMAIN}/end-at"
