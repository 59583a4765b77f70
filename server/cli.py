"""The `madoguchi` command: serve, check-templates, staff, db."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from server.settings import Settings, SettingsError, load_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return load_settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run pages, REST, signaling and the in-process SFU on one port."""
    from server.app import create_app
    from server.tls import ensure_self_signed

    settings = _settings(args)
    if args.self_signed and settings.tls_cert is None:
        cert, key = ensure_self_signed(settings.data_dir, settings.host)
        settings = settings.model_copy(update={"tls_cert": cert, "tls_key": key})
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ssl_context = None
    if settings.tls_cert and settings.tls_key:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(settings.tls_cert, settings.tls_key)
    app = create_app(settings)
    if args.demo:
        from server.demo import print_demo_on_startup

        app.on_startup.append(print_demo_on_startup)
    print(f"Madoguchi on {settings.base_url}/  (Ctrl+C stops)", flush=True)
    # the modules and objects made so far live as long as the server: the garbage collector's
    # full scans (a pause of every room's packets, 100-200 ms here) need not walk them again
    gc.collect()
    gc.freeze()
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        ssl_context=ssl_context,
        print=None,
        shutdown_timeout=5,
    )
    return 0


def cmd_check_templates(args: argparse.Namespace) -> int:
    """Validate template files; one `file:line: message` per problem."""
    from server.templates import check_files

    paths = [Path(p) for p in args.paths] or sorted(Path("consult_templates").glob("*.toml"))
    if not paths:
        print("no template files given or found", file=sys.stderr)
        return 1
    problems = check_files(paths)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{len(paths)} template file(s) OK")
    return 1 if problems else 0


async def _with_db(settings: Settings, action: str, args: argparse.Namespace) -> int:
    from server import staff as staff_svc
    from server.db.engine import make_engine, make_sessionmaker
    from server.db.migrate import upgrade

    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(url)
    if action == "upgrade":
        print("database is at the newest schema")
        return 0
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            if action == "add":
                password = os.environ.get("MADOGUCHI_STAFF_PASSWORD") or getpass.getpass(
                    f"password for {args.login}: "
                )
                added = await staff_svc.add_staff(
                    session, args.login, args.name or args.login, password
                )
                print(f"added staff {added.login}")
            elif action == "list":
                for s in await staff_svc.list_staff(session):
                    state = "disabled" if s.disabled else "active"
                    print(f"{s.login}\t{s.display_name}\t{state}")
            elif action in ("disable", "enable"):
                await staff_svc.set_disabled(session, args.login, action == "disable")
                print(f"{action}d staff {args.login}")
    except staff_svc.StaffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    return 0


def cmd_staff(args: argparse.Namespace) -> int:
    """Manage staff accounts."""
    return asyncio.run(_with_db(_settings(args), args.staff_command, args))


def cmd_db(args: argparse.Namespace) -> int:
    """Bring the database to the newest schema."""
    return asyncio.run(_with_db(_settings(args), "upgrade", args))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `madoguchi`."""
    parser = argparse.ArgumentParser(prog="madoguchi", description="Madoguchi consultation server")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, help="overrides MADOGUCHI_DATA_DIR")

    serve = sub.add_parser("serve", help="run the service")
    common(serve)
    serve.add_argument("--host", help="overrides MADOGUCHI_HOST")
    serve.add_argument("--port", type=int, help="overrides MADOGUCHI_PORT")
    serve.add_argument("--demo", action="store_true", help="create and print a demo consultation")
    serve.add_argument(
        "--self-signed",
        action="store_true",
        help="serve HTTPS with a self-signed certificate made in the data directory (trials only)",
    )
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-templates", help="validate consultation template files")
    check.add_argument("paths", nargs="*", help="template files (default consult_templates/*.toml)")
    check.set_defaults(func=cmd_check_templates)

    staff = sub.add_parser("staff", help="manage staff accounts")
    common(staff)
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser(
        "add", help="add a staff account (password from a prompt or MADOGUCHI_STAFF_PASSWORD)"
    )
    add.add_argument("login")
    add.add_argument("--name", help="display name")
    staff_sub.add_parser("list", help="list staff accounts")
    for verb in ("disable", "enable"):
        p = staff_sub.add_parser(verb, help=f"{verb} a staff account")
        p.add_argument("login")
    staff.set_defaults(func=cmd_staff)

    db = sub.add_parser("db", help="database maintenance")
    common(db)
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations up to the newest schema")
    db.set_defaults(func=cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `madoguchi` console script."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except SettingsError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
