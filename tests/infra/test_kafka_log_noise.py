"""kafka-python's tracebacks from a connection it is closing stay off the console; its real
task failures do not.

The race behind the closed-connection records (a read task scheduled before the close runs
after it) cannot be provoked on demand, so the records are logged here as kafka-python's
selector logs them: the same logger, message and exception.
"""

from __future__ import annotations

import logging

import pytest

from chatda.logs import configure_logging
from chatda.settings import get_settings

SELECTOR = logging.getLogger("kafka.net.selector")


class _Protocol:
    """Stands for a live connection: it has no ``data_received`` either, but it exists."""


def _log_task_failure(protocol: object) -> None:
    try:
        protocol.data_received(b"\x00")  # type: ignore[attr-defined]
    except AttributeError:
        SELECTOR.exception("Unhandled exception in task %s:", "<Task _read_from_sock>")


def _console(capsys: pytest.CaptureFixture[str], protocol: object) -> str:
    """What the process's stderr shows for one task failure (the handler writes to whatever
    ``sys.stderr`` is, here pytest's capture)."""
    configure_logging(get_settings())
    capsys.readouterr()
    _log_task_failure(protocol)
    return capsys.readouterr().err


def test_read_task_of_a_closed_transport_is_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    assert _console(capsys, None) == ""


def test_a_real_task_failure_still_shows(capsys: pytest.CaptureFixture[str]) -> None:
    shown = _console(capsys, _Protocol())
    assert "Unhandled exception in task" in shown
    assert "Traceback (most recent call last)" in shown


def _log_closing_a_running_coroutine() -> None:
    """As the selector's ``Task.close`` logs it when a cancelled task's coroutine is the one
    running: a generator closing itself raises ``generator already executing``."""

    def task():  # type: ignore[no-untyped-def]
        me = yield
        try:
            me.close()
        except ValueError:
            SELECTOR.exception("Error closing coroutine for cancelled task")
        yield

    running = task()
    next(running)
    running.send(running)


def test_closing_a_running_coroutine_of_a_closed_client_is_dropped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(get_settings())
    capsys.readouterr()
    _log_closing_a_running_coroutine()
    assert capsys.readouterr().err == ""
    SELECTOR.exception("Error closing coroutine for cancelled task", exc_info=ValueError("other"))
    assert "Error closing coroutine" in capsys.readouterr().err  # another failure still shows
