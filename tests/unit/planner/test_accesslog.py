"""The access log: one JSON line per request, written in batches, off when asked."""
import asyncio
import io
import json
import logging

import pytest

from execplanner.planner.accesslog import LOGGER, AccessLog


@pytest.fixture(autouse=True)
def info_level():
    """The service's main() logs at INFO; the test process's default level is WARNING."""
    logger = logging.getLogger(LOGGER)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(old)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_are_written_together_and_say_what_was_asked():
    out = io.StringIO()
    log = AccessLog(stream=out, batch=3)
    log.record("POST", "/accepts", "/accepts", 200, 0.42)
    log.record("GET", "/uws/jobs/x", "/uws/jobs/{job}", 404, 1.5)
    assert out.getvalue() == ""  # not yet: a batch is written at once
    log.record("GET", "/uws/jobs", "/uws/jobs", 200, 3.0)  # the third fills the batch
    first, second, third = lines(out)
    assert first["logger"] == LOGGER and first["level"] == "INFO" and first["message"] == "request"
    assert (first["method"], first["path"], first["route"], first["status"], first["ms"]) == (
        "POST", "/accepts", "/accepts", 200, 0.42)
    assert (second["route"], second["status"]) == ("/uws/jobs/{job}", 404)
    assert len(first["time"]) == len("2026-01-01T00:00:00")
    log.record("GET", "/a", "/a", 200, 1.0)
    log.flush()
    assert len(lines(out)) == 4


async def test_waiting_lines_are_written_after_the_interval():
    out = io.StringIO()
    log = AccessLog(stream=out, interval=0.05)
    log.record("POST", "/accepts", "/accepts", 400, 0.2)
    assert out.getvalue() == ""
    await asyncio.sleep(0.2)
    assert [line["status"] for line in lines(out)] == [400]


def test_off_by_setting_or_by_the_loggers_level():
    out = io.StringIO()
    AccessLog(enabled=False, stream=out).record("GET", "/", "/", 200, 1.0)
    logging.getLogger(LOGGER).setLevel(logging.WARNING)
    quiet = AccessLog(stream=out)
    quiet.record("GET", "/", "/", 200, 1.0)
    quiet.flush()
    assert out.getvalue() == ""


def test_a_broken_stream_loses_lines_not_answers():
    class Flaky(io.StringIO):
        broken = True

        def write(self, text):
            if self.broken:
                raise OSError("broken pipe")
            return super().write(text)
    stream = Flaky()
    log = AccessLog(stream=stream, batch=2)
    for status in (500, 501):  # the second fills the batch: a write that fails
        log.record("GET", "/", "/", status, 1.0)
    stream.broken = False  # the stream mends: what failed stays lost (not kept, not repeated)
    for status in (200, 201):
        log.record("GET", "/", "/", status, 1.0)
    assert [line["status"] for line in lines(stream)] == [200, 201]
