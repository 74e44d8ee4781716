"""``Supervisor``: keep ``chatda up``'s processes running, as systemd or Kubernetes would.

Two kinds of child: commands (``spawn``: the API, ingest worker, scheduler, feedback consumer)
and the embedded servers (``keep``: Tansu, milvus-lite), which restart on the same port (and
data dir) so the commands' configuration stays valid. A child that exits is started again
after a backoff: ``first_s`` doubling up to ``max_s`` for each exit in a row, back to
``first_s`` once a run lasted ``stable_s``. So one crash (a worker killed mid-batch) costs a
second, and a child that crashes at once on every start (a bad setting) retries every
``max_s`` instead of spinning. Each exit and restart is reported through ``echo``. Only
``stop()`` ends the children: a crash never takes the rest of the stack down with it.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import chatda.backoff

LOG_TAIL_BYTES = 8192
MAX_LINE_CHARS = 300
ERROR_LINE = re.compile(r'\[(error|critical)\s*\]|"level":\s*"(error|critical)"')
"""A line ``chatda.logs`` wrote at those levels, as text or as JSON (``CHATDA_LOG_JSON``)."""


@dataclass(frozen=True)
class Backoff(chatda.backoff.Backoff):
    """How long to wait before restarting a child that exited."""

    first_s: float = 1.0
    stable_s: float = 60.0  # a run this long was healthy: the next exit waits first_s again


class Server(Protocol):
    """What ``keep`` supervises: ``chatda.process.LocalServer`` (Tansu, milvus-lite)."""

    @property
    def pid(self) -> int | None: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


class _Command:
    """A command run as a child process, started again from the same argv and env.

    Its own session (process group): a Ctrl-C at the terminal reaches only the supervisor,
    which then stops the children in order, instead of every process at once. Its output goes
    to ``log_path`` (appended across restarts) when one is given.
    """

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str] | None, log_path: Path | None
    ) -> None:
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0
        """Where this run's output starts in the log (earlier runs' lines come before)."""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        self.proc = None
        if self.log_path is None:
            self.proc = subprocess.Popen(self.argv, env=self.env, start_new_session=True)
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exit_code(self) -> int | None:
        """None while it runs; -1 when it never started."""
        return self.proc.poll() if self.proc is not None else -1

    def last_words(self) -> str | None:
        """What it died of, from the end of this run's output: the last error line there (a
        server logs its shutdown after the error that stopped it), else the last line (an
        uncaught exception's)."""
        if self.log_path is None or not self.log_path.exists():
            return None
        with open(self.log_path, "rb") as log:
            log.seek(max(self._log_start, log.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
            tail = log.read().decode("utf-8", errors="replace")
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        errors = [line for line in lines if ERROR_LINE.search(line)]
        found = errors or lines
        return found[-1][:MAX_LINE_CHARS] if found else None

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def finish(self, name: str, timeout_s: float, echo: Callable[[str], None]) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            echo(f"· {name} did not stop in {timeout_s:.0f} s; killing it")
            self.proc.kill()
            self.proc.wait()


class _Kept:
    """An embedded server: its own ``stop()`` is polite first, then forceful."""

    def __init__(self, server: Server) -> None:
        self.server = server

    @property
    def pid(self) -> int | None:
        return self.server.pid

    def start(self) -> None:
        self.server.stop()  # reaps the dead process, frees the port
        self.server.start()

    def exit_code(self) -> int | None:
        return None if self.server.running else -1

    def last_words(self) -> str | None:
        """Nothing: an embedded server's own log is its ``log_path``, named at start-up."""
        return None

    def terminate(self) -> None:
        """Nothing yet: servers stop after every command (which may still need them)."""

    def finish(self, name: str, timeout_s: float, echo: Callable[[str], None]) -> None:
        self.server.stop()


@dataclass
class _Child:
    name: str
    unit: _Command | _Kept
    started_at: float = 0.0
    exits_in_a_row: int = 0
    restart_at: float | None = None
    restarts: int = 0
    codes: list[int] = field(default_factory=list)


class Supervisor:
    """Starts named commands and servers and restarts them with backoff until ``stop()``.

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

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        """Start ``argv`` as the child ``name`` and keep it running; its output to ``log_path``
        (default: this process's)."""
        child = _Child(name, _Command(argv, env, log_path))
        with self._lock:
            self._start(child)
            self._children.append(child)
        self.echo(f"· {name} started (pid {child.unit.pid})")

    def keep(self, name: str, server: Server) -> None:
        """Keep an already started ``server`` running; stopped after every command."""
        child = _Child(name, _Kept(server), started_at=self.clock())
        with self._lock:
            self._children.append(child)

    def process(self, name: str) -> subprocess.Popen[bytes] | None:
        """The command's current process (None while it waits to be restarted)."""
        child = self._child(name)
        if child.restart_at is not None or not isinstance(child.unit, _Command):
            return None
        return child.unit.proc

    def restarts(self, name: str) -> int:
        return self._child(name).restarts

    def exit_codes(self, name: str) -> list[int]:
        """Every exit code of ``name`` so far, oldest first (-1: unknown, or never started)."""
        return list(self._child(name).codes)

    def tick(self) -> None:
        """Notice exits (schedule a restart after the backoff) and restart children now due."""
        with self._lock:
            if self._stopping:
                return
            for child in self._children:
                now = self.clock()
                if child.restart_at is None:
                    self._notice_exit(child, now)
                elif now >= child.restart_at:
                    self._start(child)
                    child.restarts += 1
                    self.echo(f"· {child.name} restarted (pid {child.unit.pid})")

    def run(self, stop: threading.Event, interval_s: float = 0.2) -> None:
        while not stop.wait(interval_s):
            self.tick()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every child, last started first: SIGTERM to all commands, wait (then kill what
        is left), then the servers."""
        with self._lock:
            self._stopping = True
            children = list(reversed(self._children))
        for child in children:
            child.unit.terminate()
        for child in children:
            child.unit.finish(child.name, timeout_s, self.echo)

    def _notice_exit(self, child: _Child, now: float) -> None:
        code = child.unit.exit_code()
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
        why = child.unit.last_words()
        if why:
            self.echo(f"  from its log: {why}")

    def _start(self, child: _Child) -> None:
        child.started_at = self.clock()
        child.restart_at = None
        try:
            child.unit.start()
        except Exception as exc:  # counted as an immediate exit: retried with backoff
            self.echo(f"· {child.name} could not start: {exc}")

    def _child(self, name: str) -> _Child:
        for child in self._children:
            if child.name == name:
                return child
        raise KeyError(name)
