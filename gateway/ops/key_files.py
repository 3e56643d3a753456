"""The key files kept on disk under the data directory when none are configured: the
JWT secret and the VAPID key pair.

Several processes (web, worker, clock) may start at once on a fresh checkout; the first
to write a file wins and the others read what it wrote, so they all agree.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from gateway.push.vapid import check_key_pair, generate_keys

VAPID_FILE = "vapid.json"
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


def load_or_create_vapid_keys(data_dir: Path) -> tuple[str, str]:
    """The (public, private) pair in `data_dir/vapid.json`, created (mode 0600) when absent.

    An unreadable or mismatched file is an error, never silently replaced: new keys
    would orphan every push subscription browsers hold.
    """
    path = data_dir / VAPID_FILE
    if not path.exists():
        public, private = generate_keys()
        document = {"public_key": public, "private_key": private}
        create_private_file(path, json.dumps(document, indent=2) + "\n")
    try:
        stored = json.loads(path.read_text())
        public, private = str(stored["public_key"]), str(stored["private_key"])
        check_key_pair(public, private)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} holds no valid VAPID key pair ({exc}); fix or delete it") from exc
    return public, private
