"""Administration use cases: user accounts, roles and the application settings, plus
the read-only views everyone needs (the directory of names, the demo logins)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from domain import permissions
from domain.errors import Conflict, Invalid, NotFound
from domain.escalation import LADDER_KEY, check_ladder, ladder_json, ladder_of
from domain.events import RoleChanged, SettingsChanged, UserRegistered
from domain.model import Actor, Language, Role
from domain.preferences import check_default_push, default_types
from gateway.services.credentials import hash_password
from gateway.services.outbox import UnitOfWork
from gateway.services.preferences import DEFAULT_PUSH_KEY

USER_COLUMNS = "id, email, full_name, role, language"
SETTING_VALUE_MAX_BYTES = 64 * 1024
SETTING_DEPTH_MAX = 32

# The demo accounts `floorbell seed` creates (email, full name, role).
DEMO_USERS = (
    ("admin@example.com", "Ada Admin", "admin"),
    ("supervisor@example.com", "Sam Supervisor", "supervisor"),
    ("tech1@example.com", "Theo Technician", "technician"),
    ("tech2@example.com", "Tess Technician", "technician"),
    ("operator@example.com", "Olga Operator", "operator"),
)


async def list_users(conn: asyncpg.Connection, actor: Actor) -> list[dict[str, Any]]:
    permissions.require_admin(actor, "manage users")
    return [dict(row) for row in await conn.fetch(f"SELECT {USER_COLUMNS} FROM users ORDER BY id")]


async def directory(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Names and roles, no emails: what anyone needs to pick an assignee or a contact."""
    rows = await conn.fetch("SELECT id, full_name, role FROM users ORDER BY full_name, id")
    return [dict(row) for row in rows]


async def register(uow: UnitOfWork, actor: Actor, fields: dict[str, Any]) -> dict[str, Any]:
    permissions.require_admin(actor, "manage users")
    conn = uow.conn
    email = fields["email"].lower()
    if await conn.fetchval("SELECT 1 FROM users WHERE lower(email) = $1", email):
        raise Conflict(f"A user with the email {email} already exists.")
    # argon2 is deliberately slow: keep it off the event loop.
    password_hash = await asyncio.to_thread(hash_password, fields["password"])
    try:
        row = await conn.fetchrow(
            "INSERT INTO users (email, full_name, role, password_hash) VALUES ($1, $2, $3, $4)"
            f" RETURNING {USER_COLUMNS}",
            email, fields["full_name"], str(fields["role"]), password_hash,
        )  # fmt: skip
    except asyncpg.UniqueViolationError:  # registered concurrently since the check above
        raise Conflict(f"A user with the email {email} already exists.") from None
    uow.emit(UserRegistered(actor.id, row["id"], row["email"], row["full_name"], row["role"]))
    return dict(row)


async def change_role(uow: UnitOfWork, actor: Actor, user_id: int, role: Role) -> dict[str, Any]:
    permissions.require_admin(actor, "change roles")
    conn = uow.conn
    # Lock the admins too: two admins demoting each other at once must not both succeed.
    await conn.execute("SELECT 1 FROM users WHERE role = 'admin' FOR UPDATE")
    row = await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE", user_id)
    if row is None:
        raise NotFound(f"User {user_id} does not exist.")
    previous = Role(row["role"])
    if previous is role:
        return dict(row)
    if previous is Role.ADMIN:
        admins = await conn.fetchval("SELECT count(*) FROM users WHERE role = 'admin'")
        if admins <= 1:
            raise Conflict("The last admin cannot give up the role; promote someone else first.")
    await conn.execute("UPDATE users SET role = $2 WHERE id = $1", user_id, str(role))
    uow.emit(RoleChanged(actor.id, user_id, str(previous), str(role)))
    return {**dict(row), "role": str(role)}


async def first_login(conn: asyncpg.Connection, user_id: int, browser: Language) -> dict[str, Any]:
    """A person's first login: their language becomes the browser's; later logins change
    nothing (the person chooses in the app)."""
    row = await conn.fetchrow(
        "UPDATE users SET language = CASE WHEN first_login_at IS NULL THEN $2 ELSE language END,"
        f" first_login_at = coalesce(first_login_at, now()) WHERE id = $1 RETURNING {USER_COLUMNS}",
        user_id, str(browser),
    )  # fmt: skip
    if row is None:
        raise NotFound(f"User {user_id} does not exist.")
    return dict(row)


async def set_language(
    conn: asyncpg.Connection, actor: Actor, language: Language
) -> dict[str, Any]:
    """The person's own choice of language, for the app and what they are sent from now on
    (notifications already in the inbox keep the words they were written in)."""
    row = await conn.fetchrow(
        f"UPDATE users SET language = $2 WHERE id = $1 RETURNING {USER_COLUMNS}",
        actor.id, str(language),
    )  # fmt: skip
    if row is None:
        raise NotFound("This account no longer exists.")
    return dict(row)


async def read_settings(conn: asyncpg.Connection, actor: Actor) -> dict[str, Any]:
    """Every setting; `default_push` names every type, with the catalogue's default for
    those the admins left alone; `escalation` is the ladder that holds (the default one
    until the admins set theirs)."""
    permissions.require_admin(actor, "manage settings")
    rows = await conn.fetch("SELECT key, value FROM settings ORDER BY key")
    values = {row["key"]: row["value"] for row in rows}
    chosen = values.get(DEFAULT_PUSH_KEY)
    values[DEFAULT_PUSH_KEY] = {kind: c["push"] for kind, c in default_types(chosen).items()}
    values[LADDER_KEY] = ladder_json(ladder_of(values.get(LADDER_KEY)))
    return dict(sorted(values.items()))


def _storable_json(key: str, value: Any) -> str:
    """The value as jsonb will hold it: finite numbers, valid text without NUL
    characters, bounded nesting and size."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    strings: list[str] = []
    while stack:
        item, depth = stack.pop()
        if depth > SETTING_DEPTH_MAX:
            raise Invalid(f"Setting {key!r} is nested deeper than {SETTING_DEPTH_MAX} levels.")
        if isinstance(item, dict):
            strings += item.keys()
            stack += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            stack += [(child, depth + 1) for child in item]
        elif isinstance(item, str):
            strings.append(item)
    if any("\x00" in text for text in strings):
        raise Invalid(f"Setting {key!r}: text must not contain NUL characters.")
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
        size = len(encoded.encode())
    except ValueError:  # NaN or Infinity, or a lone surrogate (UnicodeEncodeError)
        raise Invalid(f"Setting {key!r}: numbers must be finite and text valid Unicode.") from None
    if size > SETTING_VALUE_MAX_BYTES:
        raise Invalid(f"Setting {key!r} is larger than {SETTING_VALUE_MAX_BYTES // 1024} KiB.")
    return encoded


async def write_settings(uow: UnitOfWork, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    """Upsert the given keys; only those whose value changed are announced."""
    permissions.require_admin(actor, "manage settings")
    if DEFAULT_PUSH_KEY in values:  # a partial change: the types it leaves out keep theirs
        stored = await uow.conn.fetchval(
            "SELECT value FROM settings WHERE key = $1 FOR UPDATE", DEFAULT_PUSH_KEY
        )
        change = check_default_push(values[DEFAULT_PUSH_KEY])
        values = {**values, DEFAULT_PUSH_KEY: {**(stored or {}), **change}}
    if LADDER_KEY in values:  # the whole ladder, checked
        values = {**values, LADDER_KEY: ladder_json(check_ladder(values[LADDER_KEY]))}
    encoded = {key: _storable_json(key, value) for key, value in values.items()}
    changed = []
    for key, text in encoded.items():
        updated = await uow.conn.fetchval(
            "INSERT INTO settings (key, value) VALUES ($1, $2::text::jsonb)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
            " WHERE settings.value IS DISTINCT FROM EXCLUDED.value RETURNING key",
            key, text,
        )  # fmt: skip
        if updated is not None:
            changed.append(key)
    if changed:
        uow.emit(SettingsChanged(actor.id, sorted(changed)))
    return await read_settings(uow.conn, actor)


async def demo_logins(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The demo accounts that still exist, with their current roles."""
    emails = [email for email, _, _ in DEMO_USERS]
    rows = await conn.fetch(
        "SELECT email, full_name, role FROM users WHERE lower(email) = ANY($1::text[]) ORDER BY id",
        emails,
    )
    return [dict(row) for row in rows]
