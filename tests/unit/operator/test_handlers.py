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


def _api_error(status, headers=None):
    from kubernetes_asyncio.client.exceptions import ApiException
    e = ApiException(status=status, reason="Too Many Requests")
    e.headers = headers
    return e


def test_a_busy_api_server_at_start_up_is_retried_after_its_retry_after():
    # "storage is (re)initializing" (429) follows a CRD update; kopf's default would wait 60 s.
    retry = handlers.retry_soon(_api_error(429, {"Retry-After": "3"}))
    assert isinstance(retry, kopf.TemporaryError) and retry.delay == 3.0
    assert handlers.retry_soon(_api_error(503)).delay == 1.0
    assert handlers.retry_soon(_api_error(429, {"Retry-After": "soon"})).delay == 1.0


def test_a_refusal_at_start_up_is_not_retried_soon():
    assert handlers.retry_soon(_api_error(403)) is None
    assert handlers.retry_soon(_api_error(404)) is None
