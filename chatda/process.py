"""Child processes chatda starts and owns: one lifecycle for every kind.

The local engines (Tansu, milvus-lite) are plain executables that chatda starts for development
and tests; chatda's own workers run as children too (the re-index replays the topic with a real
``chatda ingest``). They fail in the same ways (executable missing, port taken, data dir locked,
exits before serving), so ``ManagedProcess`` gives them one contract: start, and wait until the
child really answers if it serves something, or raise with the tail of its log; stop politely
first, then by force; optionally die with the parent, so a killed owner leaves no orphan.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

logger = logging.getLogger(__name__)

_POLL_INTERVAL_S = 0.1
_LOG_TAIL_LINES = 30
_PR_SET_PDEATHSIG = 1


class LocalServer:
    """``with Server(...) as s:`` for the embedded engines: start on enter, stop on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Started and not exited: what a supervisor (``chatda up``) watches to restart it."""
        process: ManagedProcess | None = getattr(self, "_process", None)
        return process is not None and process.running

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerStartError(RuntimeError):
    """The child's executable is missing, or it exited or was not ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a currently unused TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port.

    Checked before speaking the real protocol so client libraries do not log connection-refused
    tracebacks while the server is still booting.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(host: str, port: int, name: str) -> None:
    """Refuse to start a server on a port that already answers.

    Readiness is probed over TCP, so a server already on that port would answer for a child
    that is about to fail (Tansu panics on AddrInUse only after a moment); gRPC servers such
    as milvus-lite even bind with SO_REUSEPORT and would silently share the port.
    """
    if port_accepts(host, port):
        raise ServerStartError(f"cannot start {name}: {host}:{port} is already in use")


def _die_with_parent() -> Callable[[], None]:
    """What the child runs before exec so that the kernel sends it SIGTERM when the parent
    thread that started it ends. ``prctl`` is looked up here, in the parent: the child of a
    threaded process must not load libraries between fork and exec."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def in_child() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")

    return in_child


class ManagedProcess:
    """One child process, its log file, and its lifecycle.

    ``env`` is the child's whole environment (default: this process's). With
    ``die_with_parent`` (Linux) the kernel stops the child with SIGTERM when the thread that
    started it ends, even by SIGKILL; so start it from a thread that lives as long as the
    child is wanted.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        env: Mapping[str, str] | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stop_signal = stop_signal
        self.env = dict(env) if env is not None else None
        self.die_with_parent = die_with_parent
        self._own_log = log_path is None
        if log_path is None:
            fd, temp_name = tempfile.mkstemp(prefix=f"chatda-{name}-", suffix=".log")
            os.close(fd)
            log_path = Path(temp_name)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code once the started process has exited; None while it runs, or before
        it started and after ``stop()``."""
        return self._proc.poll() if self._proc is not None else None

    def spawn(self) -> None:
        """Start the process without waiting for anything; ServerStartError if it cannot run."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name} already started (pid {self._proc.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    start_new_session=True,  # stopped by its owner, not by a Ctrl-C to all
                    preexec_fn=_die_with_parent() if self.die_with_parent else None,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                self._discard_own_log()
                raise ServerStartError(f"cannot run {self.name} ({self.argv[0]}): {exc}") from exc
        atexit.register(self.stop)
        logger.info("%s starting pid=%d log=%s", self.name, self._proc.pid, self.log_path)

    def start(self, ready: Callable[[], bool], timeout_s: float) -> None:
        """Spawn the process and block until ``ready()`` is true.

        Raises ServerStartError (with the log tail) when the executable is missing, the process
        exits before it is ready, or ``timeout_s`` passes; the process is never left behind.
        """
        self.spawn()
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                report = self._log_report()
                self.stop()
                raise ServerStartError(
                    f"{self.name} exited with code {code} before it was ready; {report}"
                )
            if ready():
                logger.info("%s ready pid=%d", self.name, self._proc.pid)
                return
            if time.monotonic() > deadline:
                report = self._log_report()
                self.stop()
                raise ServerStartError(f"{self.name} not ready after {timeout_s:.0f}s; {report}")
            time.sleep(_POLL_INTERVAL_S)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Send the polite stop signal, then SIGKILL after ``timeout_s``; idempotent."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s pid=%d ignored %s; killing", self.name, proc.pid, self.stop_signal.name
                )
                proc.kill()
                proc.wait()
        logger.info("%s stopped pid=%d code=%s", self.name, proc.pid, proc.returncode)
        self._discard_own_log()

    def _discard_own_log(self) -> None:
        """Delete the log if it is our temporary file; a caller-chosen log is kept."""
        if self._own_log:
            with contextlib.suppress(OSError):
                os.unlink(self.log_path)

    def _log_report(self) -> str:
        """The log tail for an error message, naming the file only if it outlives ``stop()``."""
        where = "its log" if self._own_log else f"log {self.log_path}"
        return f"{where} ends:\n{self.log_tail()}"

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"
