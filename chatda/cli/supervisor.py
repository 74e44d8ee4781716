"""``Supervisor``: keep ``chatda up``'s child processes running, as systemd or Kubernetes would.

A child that exits is started again after a backoff: ``first_s`` doubling up to ``max_s`` for
each exit in a row, back to ``first_s`` once a run lasted ``stable_s``. So one crash (a worker
killed mid-batch, a poison record that slipped through) costs a second, and a child that
crashes at once on every start (a bad setting) retries every ``max_s`` instead of spinning.
Each exit and restart is reported through ``echo``. Only ``stop()`` ends the children: a
crash never takes the rest of the stack down with it.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """How long to wait before restarting a child that exited."""

    first_s: float = 1.0
    max_s: float = 30.0
    stable_s: float = 60.0  # a run this long was healthy: the next exit waits first_s again

    def delay(self, exits_in_a_row: int) -> float:
        return float(min(self.first_s * 2 ** (exits_in_a_row - 1), self.max_s))


@dataclass
class _Child:
    name: str
    argv: list[str]
    env: Mapping[str, str] | None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    exits_in_a_row: int = 0
    restart_at: float | None = None
    restarts: int = 0
    codes: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


class Supervisor:
    """Starts named commands and restarts them with backoff until ``stop()``.

    ``tick()`` does one round of checks (tests drive it directly); ``run(stop)`` ticks until
    ``stop`` is set, typically on a thread while the caller waits for a signal.
    """

    def __init__(
        self,
        backoff: Backoff | None = None,
        echo: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.echo = echo
        self.clock = clock
        self._children: list[_Child] = []
        self._lock = threading.Lock()
        self._stopping = False

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start ``argv`` as the child ``name`` and keep it running."""
        child = _Child(name, list(argv), env)
        with self._lock:
            self._start(child)
            self._children.append(child)
        self.echo(f"· {name} started (pid {child.pid})")

    def process(self, name: str) -> subprocess.Popen[bytes] | None:
        """The child's current process (None while it waits to be restarted)."""
        child = self._child(name)
        return child.proc if child.restart_at is None else None

    def restarts(self, name: str) -> int:
        return self._child(name).restarts

    def exit_codes(self, name: str) -> list[int]:
        """Every exit code of ``name`` so far, oldest first."""
        return list(self._child(name).codes)

    def tick(self) -> None:
        """Notice exits (schedule a restart after the backoff) and restart children now due."""
        with self._lock:
            if self._stopping:
                return
            now = self.clock()
            for child in self._children:
                if child.restart_at is None:
                    self._notice_exit(child, now)
                elif now >= child.restart_at:
                    self._start(child)
                    child.restarts += 1
                    self.echo(f"· {child.name} restarted (pid {child.pid})")

    def run(self, stop: threading.Event, interval_s: float = 0.2) -> None:
        while not stop.wait(interval_s):
            self.tick()

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every child (last started first), wait, then kill what is left."""
        with self._lock:
            self._stopping = True
            running = [c for c in reversed(self._children) if c.proc and c.proc.poll() is None]
        for child in running:
            assert child.proc is not None
            child.proc.terminate()
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.echo(f"· {child.name} did not stop in {timeout_s:.0f} s; killing it")
                child.proc.kill()
                child.proc.wait()

    def _notice_exit(self, child: _Child, now: float) -> None:
        code = child.proc.poll() if child.proc is not None else -1  # -1: could not start
        if code is None:
            return
        child.codes.append(code)
        ran = now - child.started_at
        child.exits_in_a_row = 1 if ran >= self.backoff.stable_s else child.exits_in_a_row + 1
        delay = self.backoff.delay(child.exits_in_a_row)
        child.restart_at = now + delay
        self.echo(
            f"· {child.name} exited with {code} after {ran:.1f} s; "
            f"restarting in {delay:.1f} s (exit {child.exits_in_a_row} in a row)"
        )

    def _start(self, child: _Child) -> None:
        child.started_at = self.clock()
        child.restart_at = None
        try:
            child.proc = subprocess.Popen(child.argv, env=child.env)
        except OSError as exc:  # counted as an immediate exit: retried with backoff
            self.echo(f"· {child.name} could not start: {exc}")
            child.proc = None

    def _child(self, name: str) -> _Child:
        for child in self._children:
            if child.name == name:
                return child
        raise KeyError(name)
