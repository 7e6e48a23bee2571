"""A throwaway PostgreSQL server for the tests: initdb, start, SIGKILL, restart, stop.

The server lives in a fresh temporary directory (data dir, unix socket dir, log), listens on
127.0.0.1 only, on a port chosen once, so a restart comes back on the same address. PostgreSQL
refuses to run as root, so under root the server runs as the ``postgres`` user.

``kill()`` SIGKILLs the postmaster and every backend, which is what a crash looks like to a
client. The postmaster runs under a small supervisor (this file run as a script) that reaps every
server process, so a kill leaves no zombies even where pid 1 does not reap.

Environment:
    CHRONOPYPE_PG_BINDIR   directory holding initdb and postgres (default: PATH, then
                           Debian's /usr/lib/postgresql/<version>/bin, newest first)
    CHRONOPYPE_PG_TMPDIR   parent for the throwaway directories (default: the system temp dir);
                           .ci/run points it at a directory it sweeps at exit
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SERVER_USER = "postgres"
DIRECTORY_PREFIX = "chronopype-pg-"
_DEBIAN_BINDIRS = Path("/usr/lib/postgresql")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def find_bindir() -> Path:
    """Return the directory holding ``initdb`` and ``postgres``."""
    configured = os.environ.get("CHRONOPYPE_PG_BINDIR")
    if configured:
        candidates = [Path(configured)]
    else:
        candidates = []
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).parent)
        if _DEBIAN_BINDIRS.is_dir():
            versions = [p for p in _DEBIAN_BINDIRS.iterdir() if p.name.isdigit()]
            for version in sorted(versions, key=lambda p: int(p.name), reverse=True):
                candidates.append(version / "bin")
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    searched = ", ".join(str(c) for c in candidates) or "PATH and /usr/lib/postgresql/*/bin"
    raise PostgresUnavailable(
        f"PostgreSQL binaries (initdb, postgres) not found in {searched}; install Debian's "
        "'postgresql' package or set CHRONOPYPE_PG_BINDIR"
    )


def _ephemeral_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _free_loopback_port() -> int:
    """A free port below the kernel's ephemeral range, chosen at random.

    Outside that range no client connection (there are many: the chaos test, and one server
    per pytest-xdist worker) can take the port as its local end while the server is down for
    a restart; at random, servers started by parallel workers do not pick the same one.
    """
    high = _ephemeral_port_range()[0] - 1
    low = max(1024, high - 12000)
    rng = random.SystemRandom()
    for _ in range(200 if high > low else 0):
        port = rng.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # let the kernel choose
        probe.bind(("127.0.0.1", 0))
        chosen: int = probe.getsockname()[1]
        return chosen


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _children_of(parent_pid: int) -> list[int]:
    """Pids whose parent is ``parent_pid`` (from /proc; empty where there is no /proc)."""
    children = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(parent_pid):
            children.append(int(entry.parent.name))
    return children


class PostgresServer:
    """One throwaway cluster. Create it with :meth:`create`; always call :meth:`destroy`."""

    def __init__(self, bindir: Path, base_dir: Path, port: int, run_as: pwd.struct_passwd | None):
        self.bindir = bindir
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "socket"
        self.log_path = base_dir / "postgres.log"
        self.port = port
        self.host = "127.0.0.1"
        self.user = SERVER_USER
        self._run_as = run_as
        self._supervisor: subprocess.Popen[bytes] | None = None
        self._postmaster_pid = 0

    @classmethod
    def create(cls) -> PostgresServer:
        """Make a fresh cluster (initdb) in a new temporary directory; the server is not started."""
        bindir = find_bindir()
        run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                run_as = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root and there is no '{SERVER_USER}' user to run the server as "
                    "(PostgreSQL refuses to run as root)"
                ) from None
        parent = os.environ.get("CHRONOPYPE_PG_TMPDIR") or None
        base_dir = Path(tempfile.mkdtemp(prefix=DIRECTORY_PREFIX, dir=parent))
        server = cls(bindir, base_dir, _free_loopback_port(), run_as)
        try:
            server._initdb()
        except BaseException:
            server.destroy()
            raise
        return server

    # -- process plumbing ---------------------------------------------------------------------

    def _as_server_user(self) -> dict[str, Any]:
        if self._run_as is None:
            return {}
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}

    def _initdb(self) -> None:
        self.socket_dir.mkdir()
        if self._run_as is not None:
            for path in (self.base_dir, self.socket_dir):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        command = [
            str(self.bindir / "initdb"),
            "--pgdata", str(self.data_dir),
            "--username", self.user,
            "--auth", "trust",
            "--encoding", "UTF8",
            "--locale", "C",
            "--no-sync",
        ]  # fmt: skip
        result = subprocess.run(
            command,
            cwd=self.base_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
            **self._as_server_user(),
        )
        if result.returncode != 0:
            output = result.stdout.decode(errors="replace").strip()[-2000:]
            raise PostgresUnavailable(f"initdb failed (exit {result.returncode}): {output}")

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while this helper's server is up."""
        if self._supervisor is None or self._supervisor.poll() is not None:
            return None
        return self._postmaster_pid

    @property
    def is_running(self) -> bool:
        return self.pid is not None

    def dsn(self, **params: str) -> str:
        """A DSN for the ``postgres`` database; ``params`` become query parameters."""
        query = "&".join(f"{key}={value}" for key, value in params.items())
        return f"postgresql://{self.user}@{self.host}:{self.port}/postgres" + (
            f"?{query}" if query else ""
        )

    def start(self, timeout: float = 60.0) -> float:
        """Start the server and wait until it accepts connections.

        Returns the ``time.monotonic()`` at which it was seen ready (after crash recovery, when the
        previous run was killed).
        """
        if self._supervisor is not None:
            raise RuntimeError(f"PostgreSQL on port {self.port} is already running")
        command = [
            str(self.bindir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", f"unix_socket_directories={self.socket_dir}",
            # fsync only protects against an OS crash; a killed server still keeps every
            # acknowledged commit, because synchronous_commit stays on.
            "-c", "fsync=off",
            "-c", "shared_buffers=16MB",
            "-c", "max_connections=50",
            "-c", "log_min_messages=warning",
        ]  # fmt: skip
        uid, gid = (self._run_as.pw_uid, self._run_as.pw_gid) if self._run_as else (-1, -1)
        supervise = [sys.executable, __file__, "--supervise", str(uid), str(gid), "--", *command]
        with self.log_path.open("ab") as log:
            self._supervisor = subprocess.Popen(
                supervise,
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert self._supervisor.stdout is not None
        with self._supervisor.stdout as announcement:
            first_line = announcement.readline().strip()
        if not first_line.isdigit():
            self._supervisor.wait()
            self._supervisor = None
            raise PostgresUnavailable(f"postgres did not start; log tail:\n{_tail(self.log_path)}")
        self._postmaster_pid = int(first_line)
        deadline = time.monotonic() + timeout
        while True:
            if self._supervisor.poll() is not None:
                code = self._supervisor.returncode
                self._supervisor = None
                raise PostgresUnavailable(
                    f"postgres exited with {code} while starting; log tail:\n{_tail(self.log_path)}"
                )
            if self._reports_ready():
                return time.monotonic()
            if time.monotonic() > deadline:
                self.kill()
                raise PostgresUnavailable(
                    f"postgres not ready after {timeout} s; log tail:\n{_tail(self.log_path)}"
                )
            time.sleep(0.005)

    def _reports_ready(self) -> bool:
        # The postmaster rewrites the last line of postmaster.pid to "ready" once it accepts
        # connections; reading it needs no client library and no connection attempt.
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return (
            len(lines) >= 8
            and lines[0].strip() == str(self._postmaster_pid)
            and lines[7].strip() == "ready"
        )

    def kill(self) -> None:
        """SIGKILL the postmaster and all its backends, like a crash.

        Returns once every server process is gone (the supervisor has reaped them all), so a
        restart never meets a half-dead predecessor.
        """
        supervisor = self._supervisor
        if supervisor is None:
            return
        # Every backend calls setsid(), so no process group holds the whole server: kill each
        # process by pid. The postmaster is frozen first, so that it neither notices its
        # children dying nor lets them notice its death: no server process gets to send a
        # client a last message; clients just see their connections drop.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._postmaster_pid, signal.SIGSTOP)
        for pid in (*_children_of(self._postmaster_pid), self._postmaster_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        supervisor.wait()
        self._supervisor = None

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: disconnect clients, checkpoint); SIGKILL if it takes too long."""
        supervisor = self._supervisor
        if supervisor is None:
            return
        if supervisor.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._postmaster_pid, signal.SIGINT)
            try:
                supervisor.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._supervisor = None

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _supervise(uid: int, gid: int, command: list[str]) -> int:
    """Run the postmaster as a child and reap every server process when it dies.

    A killed postmaster's backends are orphaned; they are re-parented to the nearest "child
    subreaper", else to pid 1, and where pid 1 does not reap (some containers and sandboxes) each
    kill would leave zombies behind. As a subreaper this process collects them, and it exits only
    when the last server process is gone. Prints the postmaster's pid on its first line.
    """
    pr_set_child_subreaper = 36
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    credentials: dict[str, Any] = {}
    if uid >= 0:
        credentials = {"user": uid, "group": gid, "extra_groups": []}
    try:
        # The server logs to our stderr (the log file); our stdout is the pid announcement pipe.
        postmaster = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,
            process_group=0,
            **credentials,
        )
    except OSError as exc:
        print(f"cannot run {command[0]}: {exc}", file=sys.stderr)
        return 127
    print(postmaster.pid, flush=True)
    sys.stdout.close()
    exit_code = 0
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return exit_code
        if pid == postmaster.pid:
            exit_code = os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    if len(sys.argv) < 6 or sys.argv[1] != "--supervise" or sys.argv[4] != "--":
        sys.exit("usage: pg_server.py --supervise UID GID -- POSTGRES_COMMAND...")
    sys.exit(_supervise(int(sys.argv[2]), int(sys.argv[3]), sys.argv[5:]))
