"""`floorbell`: the console entry point of every part of the system."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from gateway.config import ConfigError, Settings

DATA_DIR = Path(os.environ.get("FLOORBELL_DATA_DIR", Path.cwd() / ".data"))
DESCRIPTION = """Floorbell — realtime notifications for factory maintenance.

Configuration comes from environment variables (see the README); JWT_SECRET and the VAPID
keys default to the ones `floorbell up` keeps under .data/."""


def run_service(main: Coroutine[Any, Any, None]) -> None:
    """Long-running processes use uvloop: asyncpg, redis and the HTTP server all spend
    less CPU per round trip on it than on the default event loop."""
    import uvloop

    uvloop.run(main)


def local_settings() -> Settings:
    """Settings from the environment, completed by the secrets kept under .data/."""
    from gateway.ops.key_files import load_or_create_jwt_secret, load_or_create_vapid_keys

    env = dict(os.environ)
    if not env.get("JWT_SECRET"):
        env["JWT_SECRET"] = load_or_create_jwt_secret(DATA_DIR)
    if not env.get("VAPID_PUBLIC_KEY"):
        env["VAPID_PUBLIC_KEY"], env["VAPID_PRIVATE_KEY"] = load_or_create_vapid_keys(DATA_DIR)
    return Settings.from_env(env)


def cmd_migrate(args: argparse.Namespace) -> None:
    from gateway.ops.migrate import migrate
    from gateway.ops.provision import ensure_database

    url = local_settings().database_url
    ensure_database(url)
    applied = migrate(url)
    print(f"migrations applied: {', '.join(applied)}" if applied else "schema is up to date")


def cmd_seed(args: argparse.Namespace) -> None:
    from gateway.ops.seed import seed

    settings = local_settings()

    async def run() -> list[str]:
        import asyncpg

        conn = await asyncpg.connect(settings.database_url)
        try:
            return await seed(conn, settings.demo_password)
        finally:
            await conn.close()

    logins = asyncio.run(run())
    print("demo logins:\n  " + "\n  ".join(logins))


def cmd_vapid(args: argparse.Namespace) -> None:
    from gateway.ops.key_files import load_or_create_vapid_keys
    from gateway.push.vapid import generate_keys

    public, private = generate_keys() if args.new else load_or_create_vapid_keys(DATA_DIR)
    print(f"VAPID_PUBLIC_KEY={public}\nVAPID_PRIVATE_KEY={private}")


def cmd_serve(args: argparse.Namespace) -> None:
    from gateway.lifecycle import tune_gc
    from gateway.processes.serve import serve

    settings = local_settings()
    settings.require_jwt_secret()  # before any child starts, not once per child
    port = args.port or settings.port
    workers = args.workers or settings.web_concurrency
    if workers > 1 and args.listen_fd is None:
        from gateway.processes.supervisor import supervise

        sys.exit(supervise(settings, args.host, port, workers, verbose=args.verbose))
    tune_gc()
    run_service(serve(settings, args.host, port, listen_fd=args.listen_fd, ready_fd=args.ready_fd))


def cmd_worker(args: argparse.Namespace) -> None:
    from gateway.lifecycle import tune_gc
    from gateway.processes.worker import run_worker

    tune_gc()
    run_service(run_worker(local_settings()))


def cmd_clock(args: argparse.Namespace) -> None:
    from gateway.processes.clock import run_clock

    run_service(run_clock(local_settings(), once=args.once))


def cmd_doctor(args: argparse.Namespace) -> None:
    from gateway.ops.doctor import doctor

    sys.exit(0 if asyncio.run(doctor(local_settings())) else 1)


def cmd_up(args: argparse.Namespace) -> None:
    from gateway.ops.up import up

    up(DATA_DIR, port=args.port)


def _positive(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number from 1 up, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="floorbell", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: list[tuple[str, Callable[[argparse.Namespace], None], str]] = [
        ("up", cmd_up, "provision services, migrate, seed, start every Procfile process"),
        ("migrate", cmd_migrate, "create the database if needed and apply migrations"),
        ("seed", cmd_seed, "add the demo users, machines and tickets (idempotent)"),
        ("vapid", cmd_vapid, "print the VAPID key pair (created under .data/ if missing)"),
        ("serve", cmd_serve, "run the gateway (HTTP API, SSE, the PWA), one process per core"),
        ("worker", cmd_worker, "run the relay, router, push fan-out and presence sweeper"),
        ("clock", cmd_clock, "time-based events: overdue tickets, maintenance due, escalations"),
        ("doctor", cmd_doctor, "check configuration and connectivity"),
    ]
    for name, handler, help_text in commands:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        if name in ("serve", "up"):
            command.add_argument("--port", type=int, help="HTTP port (default: $PORT or 8000)")
        if name == "serve":
            command.add_argument("--host", default="127.0.0.1", help="bind address")
            command.add_argument(
                "--workers",
                type=_positive,
                help="gateway processes sharing the port (default: $WEB_CONCURRENCY or one"
                " per core); SIGHUP restarts them one at a time",
            )
            # Set by the supervisor for its children: the shared socket, the ready pipe.
            command.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
            command.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
        if name == "vapid":
            command.add_argument(
                "--new", action="store_true", help="print a fresh pair, store nothing"
            )
        if name == "clock":
            command.add_argument("--once", action="store_true", help="one pass, then exit")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        args.handler(args)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    except KeyboardInterrupt:
        pass
