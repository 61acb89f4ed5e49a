"""The one never-raise guard and its bounded, rate-limited log: what reaches the host's logs, and what still raises."""

from __future__ import annotations

import logging

import pytest

from tenantwatch.core.guard import (
    INTERNAL_ERRORS,
    OVERFLOW_KEY,
    DeliberateError,
    RateLimitedLog,
    guard,
    log_internal_error,
)

LOGGER = "tenantwatch.core.guard"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("tenantwatch")]


def test_an_internal_error_is_swallowed_logged_with_its_traceback_and_marks_the_block_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tenantwatch"), guard("checkin") as attempt:
        raise ZeroDivisionError("hook bug")
    (record,) = _lines(caplog)
    assert attempt.failed
    assert record.getMessage() == "tenantwatch: internal error in checkin, ignored"
    assert record.levelno == logging.WARNING
    assert record.exc_info is not None and isinstance(record.exc_info[1], ZeroDivisionError)


def test_a_block_that_succeeds_logs_nothing_and_is_not_failed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="tenantwatch"), guard("checkin") as attempt:
        pass
    assert not attempt.failed
    assert _lines(caplog) == []


def test_outcome_logger_and_level_shape_the_line(caplog: pytest.LogCaptureFixture) -> None:
    own = logging.getLogger("tenantwatch.processors.processor")
    with (
        caplog.at_level(logging.DEBUG, logger="tenantwatch"),
        guard("on_end", outcome="span forwarded unchanged", logger=own, level=logging.ERROR),
    ):
        raise RuntimeError("processor bug")
    (record,) = _lines(caplog)
    assert record.name == "tenantwatch.processors.processor"
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "tenantwatch: internal error in on_end, span forwarded unchanged"


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), DeliberateError("enforce mode said no")])
def test_interrupts_exits_and_deliberate_errors_pass_through_unlogged(
    exc: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="tenantwatch"), pytest.raises(type(exc)), guard("hook"):
        raise exc
    assert _lines(caplog) == []


def test_enforce_mode_error_is_deliberate_so_no_guard_swallows_it() -> None:
    from tenantwatch.instrumentation._errors import TenantIsolationError

    assert issubclass(TenantIsolationError, DeliberateError)


def test_the_same_place_failing_again_is_logged_once_per_minute_with_the_count_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = RateLimitedLog(clock=clock)
    own = logging.getLogger(LOGGER)
    with caplog.at_level(logging.WARNING, logger="tenantwatch"):
        for _ in range(100):
            assert log.emit("after_cursor_execute", "failed", logger=own, exc_info=False) is (_ == 0)
        assert log.held_back("after_cursor_execute") == 99
        clock.now += 59.9
        assert not log.emit("after_cursor_execute", "failed", logger=own, exc_info=False)
        clock.now += 0.2
        assert log.emit("after_cursor_execute", "failed", logger=own, exc_info=False)
    assert [r.getMessage() for r in _lines(caplog)] == ["failed", "failed (100 more since last logged)"]


def test_distinct_places_are_logged_separately(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tenantwatch"):
        for where in ("checkin", "handle_error", "checkin", "handle_error"):
            with guard(where):
                raise ValueError(where)
    assert [r.getMessage() for r in _lines(caplog)] == [
        "tenantwatch: internal error in checkin, ignored",
        "tenantwatch: internal error in handle_error, ignored",
    ]


def test_the_log_keeps_a_bounded_number_of_keys_and_a_flood_of_new_ones_shares_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = RateLimitedLog(max_keys=4, clock=clock)
    with caplog.at_level(logging.WARNING, logger="tenantwatch"):
        for i in range(1000):
            log.emit(f"place {i}", "failed in %s", f"place {i}", exc_info=False)
    assert len(log) <= 4
    assert len(_lines(caplog)) == 5  # four places of their own, then one line for all the others
    assert log.held_back(OVERFLOW_KEY) == 995
    clock.now += 61  # expired keys make room again
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tenantwatch"):
        assert log.emit("a new place", "failed", exc_info=False)
    assert len(log) <= 4
    assert [r.getMessage() for r in _lines(caplog)] == ["failed"]


def test_the_log_rejects_a_zero_bound() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        RateLimitedLog(max_keys=0)


def test_a_logger_that_raises_does_not_reach_the_caller() -> None:
    class Broken(logging.Logger):
        def log(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
            raise RuntimeError("handler bug")

    with guard("hook", logger=Broken("broken")) as attempt:
        raise ValueError("x")
    assert attempt.failed


def test_the_decorator_returns_the_result_or_none_when_the_body_failed(caplog: pytest.LogCaptureFixture) -> None:
    @guard("divide")
    def divide(a: int, b: int) -> float:
        return a / b

    with caplog.at_level(logging.WARNING, logger="tenantwatch"):
        assert divide(6, 3) == 2
        assert divide(1, 0) is None
        assert divide(2, 0) is None
    assert divide.__name__ == "divide"
    assert [r.getMessage() for r in _lines(caplog)] == ["tenantwatch: internal error in divide, ignored"]


def test_the_decorator_refuses_a_coroutine_function() -> None:
    async def hook() -> None:
        pass

    with pytest.raises(TypeError, match="coroutine"):
        guard("hook")(hook)


def test_log_internal_error_logs_the_exception_being_handled_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tenantwatch"):
        for _ in range(3):
            try:
                raise LookupError("resolver bug")
            except LookupError:
                log_internal_error("custom tenant resolver", outcome="the request runs with no tenant")
    (record,) = _lines(caplog)
    assert (
        record.getMessage() == "tenantwatch: internal error in custom tenant resolver, the request runs with no tenant"
    )
    assert record.exc_info is not None and isinstance(record.exc_info[1], LookupError)
    assert INTERNAL_ERRORS.held_back("custom tenant resolver") == 2
