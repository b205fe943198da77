"""Container tasks (executable.type docker-container): one pod, made `lead` seconds before
the booked start, that holds the booked capacity and waits for the start in an init
container (children.task_pod). The kubelet stops it at the booking's end
(activeDeadlineSeconds), so a start and an end need nothing from the operator."""
from __future__ import annotations

from execplanner.api.plan import PlanSpec
from execplanner.cluster import allowlist
from execplanner.cluster.planstatus import placements_from_status
from execplanner.engine import Request
from execplanner.engine.specs import plan_request

from . import children, kube
from .lifecycle import Observation, Task
from .planrecord import Plan


class ContainerTask:
    async def admit(self, plan: Plan, spec: PlanSpec) -> Request | None:
        """The plan's engine request, or None when the plan was Rejected here (not allowed)."""
        why = allowlist.image_allowed(spec.executable.image) if spec.executable.image else None
        if why:
            await plan.reject("NotAllowed", why)
            return None
        return plan_request(spec, plan.st.settings.task_tolerations)

    async def launch(self, plan: Plan, spec: PlanSpec, now: int) -> None:
        (node, vector), *_ = placements_from_status(plan.status["booking"]["placements"])  # one pod
        pod = children.task_pod(plan.body, spec, plan.run_name, node, vector, plan.start, plan.end, now,
                                plan.st.settings)
        if not plan.status.get("taskRun"):  # (a user's TaskRun, adopted, exists already)
            # First: a pod is never seen without its TaskRun, whatever stops the operator when;
            # a launch is only repeated while the pod is missing.
            await kube.create(children.taskrun(plan.body))
        seen = plan.st.of(plan.uid)
        seen.task_made, seen.task_gone = True, False  # before the call: a lost response must not leak it
        await kube.create(pod)

    def observe(self, plan: Plan, spec: PlanSpec, now: int) -> Observation:
        seen = plan.st.of(plan.uid)
        pod = seen.task_pod
        if pod is None:
            task = Task.GONE if seen.task_gone else Task.HELD if seen.task_made else Task.ABSENT
            return Observation(task, self_limiting=True)
        if pod.deadline_exceeded:
            return Observation(Task.TIMED_OUT, pod=pod.name)
        if pod.phase == "Succeeded":
            return Observation(Task.SUCCEEDED, exit_code=0, pod=pod.name)
        if pod.phase == "Failed":
            code = pod.exit_code if pod.exit_code is not None else 1
            return Observation(Task.FAILED, exit_code=code, pod=pod.name, message=f"the task failed (exit code {code})"
                               + (f": {pod.message or pod.reason}" if pod.message or pod.reason else ""))
        if pod.phase == "Running":
            return Observation(Task.RUNNING, message=f"the task runs in pod {pod.name} on {pod.node}", pod=pod.name,
                               self_limiting=True)
        return Observation(Task.HELD, pod=pod.name, self_limiting=True)

    async def stop(self, plan: Plan) -> None:
        seen = plan.st.of(plan.uid)
        if seen.task_pod is not None or seen.task_made:
            await kube.delete("Pod", plan.namespace, children.child_name(plan.run_name))
        seen.task_made = False

    async def final_status(self, plan: Plan, spec: PlanSpec, completed: bool) -> tuple[dict, str]:
        return {}, ""

    async def cleanup(self, plan: Plan) -> None:
        """Nothing outlives the plan but the finished pod (its log), removed with the plan."""
