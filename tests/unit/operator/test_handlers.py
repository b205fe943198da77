"""kopf runs plain `def` handlers in worker threads; the calendar is not thread-safe, so every
handler registered by the operator must be a coroutine (run on the event loop)."""
import inspect

import kopf

from execplanner.operator import handlers  # noqa: F401  (registers the handlers)


def test_every_registered_handler_runs_on_the_event_loop():
    registry = kopf.get_default_registry()
    found = []
    for group in (registry._changing, registry._watching, registry._spawning, registry._activities, registry._webhooks):
        for handler in group.get_all_handlers():
            if not handler.fn.__module__.startswith("execplanner."):
                continue  # kopf's own (its login fallback)
            found.append(handler)
            assert inspect.iscoroutinefunction(handler.fn), f"{handler.fn.__name__} is not async"
    names = {h.fn.__name__ for h in found}
    assert {"node_event", "plan_daemon", "startup"} <= names
