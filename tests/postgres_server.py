"""A PostgreSQL server for the SQL tests, on loopback, for the length of the test run.

``SMILEPASS_POSTGRES_URL`` names a server to use instead (its database is emptied).
Otherwise the Debian ``postgresql`` package's binaries (``initdb``, ``pg_ctl``) start a
throw-away cluster in a temporary directory, as the ``postgres`` user when the tests
run as root, and stop it at exit. :func:`server_url` returns ``None`` when there is no
server binary: the tests then skip with that reason, except under ``CI``, where they fail.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

REASON = (
    "no PostgreSQL server binary (initdb): apt-get install postgresql, "
    "or set SMILEPASS_POSTGRES_URL"
)


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(versions[0]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(command: list[str], as_postgres: bool) -> None:
    if as_postgres:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, text=True)


_started: list[str] = []


def server_url() -> str | None:
    """The SQLAlchemy URL of a running server (started once per process), or ``None``."""
    given = os.environ.get("SMILEPASS_POSTGRES_URL")
    if given:
        return given
    if _started:
        return _started[0]
    binaries = _binaries()
    if binaries is None:
        return None
    as_postgres = os.geteuid() == 0
    home = Path(tempfile.mkdtemp(prefix="smilepass-pg-"))
    data = home / "data"
    if as_postgres:
        shutil.chown(home, "postgres")
    _run(
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "smilepass",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        as_postgres,
    )
    port = _free_port()
    options = f"-k {home} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    options += " -c synchronous_commit=off -c full_page_writes=off"
    _run(
        [
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(home / "log"),
            "start",
        ],
        as_postgres,
    )

    def stop() -> None:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            _run(
                [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], as_postgres
            )
        shutil.rmtree(home, ignore_errors=True)

    atexit.register(stop)
    _started.append(f"postgresql+psycopg://smilepass@127.0.0.1:{port}/postgres")
    return _started[0]
