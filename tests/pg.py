"""A throw-away PostgreSQL server on 127.0.0.1 for tests and benches (Debian's postgresql package)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def available() -> str | None:
    """None when a server can be started (or one is given); else the reason it cannot."""
    if os.environ.get("CLIPMARK_TEST_PG_URL"):
        return None
    if _bin_dir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql) and CLIPMARK_TEST_PG_URL is unset"
    return None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of an empty database; stop and delete the server afterwards."""
    if os.environ.get("CLIPMARK_TEST_PG_URL"):
        yield os.environ["CLIPMARK_TEST_PG_URL"]
        return
    bin_dir = _bin_dir()
    assert bin_dir is not None, available()
    root = Path(tempfile.mkdtemp(prefix="clipmark-pg-"))
    data = root / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    run = lambda args: subprocess.run(_as_postgres(args), check=True, capture_output=True)  # noqa: E731
    try:
        run([str(bin_dir / "initdb"), "-D", str(data), "-U", "clipmark", "--auth=trust", "-E", "UTF8"])
        run([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
             f"-p {port} -k {root} -h 127.0.0.1 -c fsync=on", "start"])
        run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "clipmark", "clipmark"])
        yield f"postgresql+psycopg://clipmark@127.0.0.1:{port}/clipmark"
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
