"""The run half of the plan's state machine (lifecycle.decide), without a cluster: every
phase a booked plan can be in, against everything its task can be seen doing."""
import pytest

from execplanner.operator.lifecycle import (END_GRACE_SECONDS, Finish, Launch, MarkRunning, Observation, Task, Wait,
                                            decide)

START, END, LEAD = 10_000, 10_600, 30


def step(task: Task, now: int, phase: str = "Booked", **seen):
    return decide(phase, START, END, now, LEAD, Observation(task, **seen))


def test_a_booked_plan_waits_until_the_lead_then_launches_its_task():
    assert step(Task.ABSENT, START - 3600) == Wait(START - LEAD)
    assert step(Task.ABSENT, START - LEAD) == Launch()
    assert step(Task.ABSENT, START + 5) == Launch()  # late (a restart): launched at once, its waiter returns


def test_held_pods_wait_with_no_step_of_the_operator_at_the_start():
    # The start itself is the pods' own (their init container); the operator only wakes at
    # the end unless a watch event wakes it earlier.
    assert step(Task.HELD, START - 10, self_limiting=True) == Wait(END + END_GRACE_SECONDS)
    assert step(Task.HELD, START - 10) == Wait(END)
    assert step(Task.HELD, START - 10, recheck_at=START + 121) == Wait(START + 121)


def test_running_pods_mark_the_plan_running_once():
    assert step(Task.RUNNING, START, message="on n1") == MarkRunning("on n1")
    assert step(Task.RUNNING, START + 1, phase="Starting", message="on n1") == MarkRunning("on n1")
    assert step(Task.RUNNING, START + 1, phase="Running") == Wait(END)


@pytest.mark.parametrize("phase", ["Booked", "Running"])
def test_success_completes_and_keeps_the_finished_pod(phase):
    done = step(Task.SUCCEEDED, START + 20, phase=phase)
    assert isinstance(done, Finish) and (done.phase, done.run_phase, done.exit_code) == ("Completed", "COMPLETED", 0)
    assert not done.stop


def test_a_failure_fails_with_its_exit_code_and_message():
    done = step(Task.FAILED, START + 20, phase="Running", exit_code=3, message="the task failed (exit code 3): boom")
    assert (done.phase, done.reason, done.run_phase, done.exit_code) == ("Failed", "TaskFailed", "ERROR", 3)
    assert done.message == "the task failed (exit code 3): boom" and done.warning
    assert "exit code 1" in step(Task.FAILED, START + 20).message
    timeout = step(Task.FAILED, START + 200, reason="StartTimeout", message="1 of 2 pods run")
    assert timeout.reason == "StartTimeout" and timeout.exit_code == 1


def test_stopped_by_the_cluster_at_the_end_is_a_time_limit():
    done = step(Task.TIMED_OUT, END, phase="Running")
    assert (done.phase, done.reason, done.run_phase) == ("Failed", "TimeLimitExceeded", "ABORTED")
    assert not done.stop  # already stopped


def test_at_the_end_a_self_limiting_task_is_left_to_its_kubelet_for_a_grace_then_stopped():
    assert step(Task.RUNNING, END, phase="Running", self_limiting=True) == Wait(END + END_GRACE_SECONDS)
    late = step(Task.RUNNING, END + END_GRACE_SECONDS, phase="Running", self_limiting=True)
    assert (late.reason, late.stop) == ("TimeLimitExceeded", True)
    assert step(Task.RUNNING, END, phase="Running").stop  # a chart's Jobs: stopped at once


def test_services_that_run_until_the_end_complete_then():
    done = step(Task.RUNNING, END, phase="Running", completes=False)
    assert (done.phase, done.reason, done.run_phase, done.stop) == ("Completed", "BookingEnded", "COMPLETED", True)


def test_a_booking_that_ended_before_anything_was_made_is_missed_without_a_taskrun():
    done = step(Task.ABSENT, END + 1)
    assert (done.phase, done.reason, done.run_phase) == ("Failed", "BookingMissed", None)


def test_pods_deleted_by_someone_else_fail_the_plan_and_are_never_made_again():
    assert step(Task.GONE, START + 5).reason == "TaskLost"
    # After a restart, a Running plan whose pod is not there any more: lost, not launched again.
    lost = step(Task.ABSENT, START + 5, phase="Running")
    assert isinstance(lost, Finish) and lost.reason == "TaskLost"
