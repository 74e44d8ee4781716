"""The Tansu broker process: start, readiness, stop, and clear start-up failures."""

from __future__ import annotations

import os

import pytest

from chatda.broker.tansu import TansuBroker, tansu_binary
from chatda.process import ServerStartError, port_accepts


def test_binary_is_resolved_from_the_wheel() -> None:
    path = tansu_binary()
    assert os.access(path, os.X_OK)


def test_broker_starts_answers_and_stops() -> None:
    with TansuBroker() as broker:
        pid = broker.pid
        assert pid is not None
        assert broker.bootstrap == f"127.0.0.1:{broker.port}"
        assert port_accepts("127.0.0.1", broker.port)
    assert broker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_accepts("127.0.0.1", broker.port)


def test_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(ServerStartError, match="cannot run tansu"):
        TansuBroker(binary="/nonexistent/tansu").start()


def test_early_exit_reports_log_tail() -> None:
    # This build has only the in-memory engine; a file:// engine makes it exit at start-up.
    broker = TansuBroker(storage_engine="file:///tmp/chatda-tansu/")
    with pytest.raises(ServerStartError, match="exited with code") as info:
        broker.start()
    assert "UnsupportedStorageUrl" in str(info.value)
    assert broker.pid is None


def test_port_in_use_is_refused() -> None:
    with TansuBroker() as broker, pytest.raises(ServerStartError, match="already in use"):
        TansuBroker(port=broker.port).start()
