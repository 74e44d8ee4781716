"""``chatda up``'s supervisor with real child processes: restarts with backoff, a reset after a
stable run, stop only when asked. A hand-driven clock decides when a restart is due, so the
tests wait only for the children themselves (never for a backoff to elapse)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatda.articles.publisher import BrokerUnavailable, Publisher
from chatda.broker.tansu import TansuBroker
from chatda.settings import Settings
from cli.supervisor import Backoff, Supervisor
from cli.up_command import fill_tokens
from tests.ingest.helpers import sample_article

EXIT_3 = [sys.executable, "-c", "import sys; sys.exit(3)"]
SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


def ignores_sigterm(ready: Path) -> list[str]:
    """A child that ignores SIGTERM, and touches ``ready`` once it does."""
    code = (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(120)"
    )
    return [sys.executable, "-c", code]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def supervisor(clock: Clock, lines: list[str]) -> Iterator[Supervisor]:
    sup = Supervisor(Backoff(first_s=1, max_s=4, stable_s=60), echo=lines.append, clock=clock)
    yield sup
    sup.stop(timeout_s=5)


def wait_exit(sup: Supervisor, name: str) -> int:
    proc = sup.process(name)
    assert proc is not None
    return proc.wait(timeout=60)


def test_backoff_doubles_to_its_cap() -> None:
    backoff = Backoff(first_s=1, max_s=30)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_crashing_child_is_restarted_with_growing_delays(
    supervisor: Supervisor, clock: Clock, lines: list[str]
) -> None:
    supervisor.spawn("crasher", EXIT_3)
    delays = []
    for _ in range(4):
        assert wait_exit(supervisor, "crasher") == 3
        supervisor.tick()  # notices the exit, schedules the restart
        assert supervisor.process("crasher") is None
        waited = 0.0
        while supervisor.process("crasher") is None:
            clock.now += 0.5
            waited += 0.5
            supervisor.tick()
        delays.append(waited)
    assert delays == [1, 2, 4, 4]  # first_s doubling, capped at max_s
    assert supervisor.restarts("crasher") == 4
    assert supervisor.exit_codes("crasher") == [3, 3, 3, 3]
    assert "· crasher exited with 3" in "\n".join(lines)
    assert sum("· crasher restarted (pid" in line for line in lines) == 4


@pytest.mark.parametrize(
    "output, shown",
    [
        (  # a server: its error, then its shutdown lines
            "print('[info     ] starting'); "
            "print('[error    ] [Errno 98] address already in use'); "
            "print('[info     ] Application shutdown complete.')",
            "[error    ] [Errno 98] address already in use",
        ),
        ("raise ValueError('bad setting')", "ValueError: bad setting"),  # uncaught
        (  # CHATDA_LOG_JSON
            """print('{"event": "bind failed", "level": "error"}'); print('{"level": "info"}')""",
            '{"event": "bind failed", "level": "error"}',
        ),
    ],
)
def test_an_exit_shows_what_the_child_died_of(
    supervisor: Supervisor, lines: list[str], tmp_path: Path, output: str, shown: str
) -> None:
    """The reason a child died is in its own log; the console said only its exit code, so a
    crash loop (an API whose port was taken) looked healthy from the terminal."""
    log = tmp_path / "c.log"
    log.write_text("[error    ] an earlier run's error\n")  # appended across restarts
    code = f"import sys; {output}; sys.exit(3)"
    supervisor.spawn("crasher", [sys.executable, "-c", code], log_path=log)
    assert wait_exit(supervisor, "crasher") in (1, 3)
    supervisor.tick()
    assert lines[-2].startswith("· crasher exited with")
    assert lines[-1] == f"  from its log: {shown}"


def test_a_stable_run_resets_the_backoff(supervisor: Supervisor, clock: Clock) -> None:
    supervisor.spawn("crasher", EXIT_3)
    for _ in range(3):  # three quick exits: the next delay would be 4 s
        wait_exit(supervisor, "crasher")
        supervisor.tick()
        clock.now += 10
        supervisor.tick()
    wait_exit(supervisor, "crasher")
    clock.now += 60  # this run lasted the stable period before it exited
    supervisor.tick()
    clock.now += 1
    supervisor.tick()
    assert supervisor.process("crasher") is not None  # restarted after first_s again


def test_sigkill_restarts_only_the_killed_child(supervisor: Supervisor, clock: Clock) -> None:
    supervisor.spawn("victim", SLEEP)
    supervisor.spawn("bystander", SLEEP)
    victim, bystander = supervisor.process("victim"), supervisor.process("bystander")
    assert victim is not None and bystander is not None
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    supervisor.tick()
    clock.now += 1
    supervisor.tick()
    again = supervisor.process("victim")
    assert again is not None and again.pid != victim.pid and again.poll() is None
    assert supervisor.exit_codes("victim") == [-signal.SIGKILL]
    assert supervisor.process("bystander") is bystander and bystander.poll() is None
    assert supervisor.restarts("bystander") == 0


def test_a_command_that_cannot_start_is_retried_not_fatal(
    supervisor: Supervisor, clock: Clock, lines: list[str]
) -> None:
    supervisor.spawn("missing", ["/nonexistent/chatda-binary"])
    supervisor.tick()
    assert any("· missing could not start" in line for line in lines)
    assert supervisor.exit_codes("missing") == [-1]
    clock.now += 1
    supervisor.tick()  # tried again after the backoff; the supervisor itself carries on
    assert supervisor.restarts("missing") == 1


def test_stop_ends_every_child_and_restarts_nothing(
    supervisor: Supervisor, clock: Clock, lines: list[str], tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    supervisor.spawn("polite", SLEEP)
    supervisor.spawn("stubborn", ignores_sigterm(ready))
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stubborn = supervisor.process("stubborn")
    polite = supervisor.process("polite")
    assert stubborn is not None and polite is not None
    supervisor.stop(timeout_s=2)
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL  # ignored SIGTERM, killed after the timeout
    assert any("· stubborn did not stop" in line for line in lines)
    clock.now += 100
    supervisor.tick()
    assert supervisor.restarts("polite") == supervisor.restarts("stubborn") == 0


def test_up_prints_only_a_token_it_generated(tmp_path: Path) -> None:
    env: dict[str, str] = {"CHATDA_ADMIN_TOKEN": "operator-secret"}
    configured = Settings(data_dir=tmp_path, admin_token="operator-secret")
    generated = fill_tokens(configured, env)
    assert env["CHATDA_ADMIN_TOKEN"] == "operator-secret"
    assert generated == {"CHATDA_PUBLISHER_TOKEN": env["CHATDA_PUBLISHER_TOKEN"]}

    env = {}
    generated = fill_tokens(Settings(data_dir=tmp_path, admin_token=None), env)
    assert generated["CHATDA_ADMIN_TOKEN"] == env["CHATDA_ADMIN_TOKEN"]


def test_a_killed_embedded_broker_comes_back_on_its_port(clock: Clock, lines: list[str]) -> None:
    supervisor = Supervisor(Backoff(first_s=1), echo=lines.append, clock=clock)
    with TansuBroker() as broker, Publisher(broker.bootstrap, "kept", 1) as publisher:
        supervisor.keep("tansu", broker)
        publisher.publish(sample_article(0, "tansu"))
        first = broker.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while broker.running:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        supervisor.tick()
        clock.now += 1
        supervisor.tick()  # restarts it and returns once it answers again
        assert broker.running and broker.pid != first
        assert supervisor.exit_codes("tansu") == [-1] and supervisor.restarts("tansu") == 1
        # A long-lived publisher (the API's) recovers: the send that finds its producer
        # forgotten by the new broker fails (503), the next one connects a fresh producer.
        outcomes = []
        for i in range(1, 4):
            try:
                publisher.publish(sample_article(i, "tansu"))
                outcomes.append("sent")
                break
            except BrokerUnavailable:
                outcomes.append("refused")
        assert outcomes[-1] == "sent", outcomes
        supervisor.stop()
        assert not broker.running
