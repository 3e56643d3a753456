"""Secrets kept on disk under the data directory when none are configured.

Several processes (web, worker, clock) may start at once on a fresh checkout; the first
to write a file wins and the others read what it wrote, so they all agree.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

JWT_SECRET_FILE = "jwt_secret"
JWT_SECRET_BYTES = 48
MIN_JWT_SECRET_BYTES = 32  # HS256 wants a key at least as long as its hash


def load_or_create_jwt_secret(data_dir: Path) -> str:
    """The JWT signing secret in `data_dir/jwt_secret`, created (mode 0600) when absent."""
    path = data_dir / JWT_SECRET_FILE
    if not path.exists():
        create_private_file(path, secrets.token_urlsafe(JWT_SECRET_BYTES) + "\n")
    secret = path.read_text().strip()
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        raise ValueError(f"{path} holds fewer than {MIN_JWT_SECRET_BYTES} bytes; delete it")
    return secret


def create_private_file(path: Path, content: str) -> None:
    """Write `content` to `path`, readable by its owner only, unless `path` exists.

    The content goes to a private temporary file first and is then hard-linked into
    place, which fails if `path` appeared meanwhile: nobody ever reads a half-written
    file, and a concurrent creator's file is never overwritten.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600 from the start: no window where it is readable.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first; theirs stands
    finally:
        os.unlink(tmp)
