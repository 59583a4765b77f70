"""The aiohttp application: pages, REST API and signaling on one port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from server import outbox, pages, registration_routes, rest, signaling
from server.auth import SessionStore, session_middleware
from server.db.engine import make_engine, make_sessionmaker
from server.db.migrate import upgrade
from server.errors import ApiError
from server.invitations import reminder_hook
from server.mail import Mailer, MailSender
from server.ratelimit import RateLimiter
from server.rest import LOGIN_LIMITER
from server.settings import Settings
from server.state import DB, ENGINE, MAIL_SENDER, MAILER, SESSIONS, SETTINGS, TEMPLATES
from server.templates import Template, load_templates

log = logging.getLogger(__name__)
CLIENT_DIR = Path(__file__).resolve().parent.parent / "client"


@web.middleware
async def error_middleware(request: web.Request, handler: pages.Handler) -> web.StreamResponse:
    """Turn user-facing errors into JSON; never leak a traceback to the client."""
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(exc.to_json(), status=exc.status)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return web.json_response(
            {"error": {"code": code, "message": exc.reason}}, status=exc.status
        )
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return web.json_response(
            {"error": {"code": "internal", "message": "Internal error; it has been logged."}},
            status=500,
        )


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(url)
    engine = make_engine(url)
    app[ENGINE] = engine
    app[DB] = make_sessionmaker(engine)
    yield
    await engine.dispose()


async def _mail(app: web.Application) -> AsyncIterator[None]:
    templates = app[TEMPLATES]
    sender = MailSender(
        app[DB], app[SETTINGS], hooks=[reminder_hook(app[SETTINGS], templates=templates.get)]
    )
    app[MAIL_SENDER] = sender
    app[MAILER] = Mailer(wake=sender.wake)
    sender.start()
    yield
    await sender.close()


def create_app(settings: Settings, templates: dict[str, Template] | None = None) -> web.Application:
    """Build the app; templates are loaded from settings.templates_dir unless given."""
    app = web.Application(
        middlewares=[error_middleware, session_middleware(SESSIONS)],
        client_max_size=1024 * 1024,
    )
    app[SETTINGS] = settings
    app[TEMPLATES] = templates if templates is not None else load_templates(settings.templates_dir)
    app[SESSIONS] = SessionStore(settings.session_max_age)
    app[LOGIN_LIMITER] = RateLimiter(settings.login_attempts_per_minute, 60.0)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_mail)
    signaling.setup(app)
    app.add_routes(rest.routes)
    app.add_routes(outbox.routes)
    registration_routes.setup(app)
    pages.setup(app, CLIENT_DIR)
    return app
