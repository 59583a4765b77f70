"""The browser client's pages and static files, all served by Madoguchi itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PAGES = {
    "/": "index.html",
    "/j/{token}": "index.html",
    "/join": "index.html",
    "/check": "index.html",
    "/staff": "index.html",
}
# a closed network: nothing is loaded from outside, and nothing may frame the pages
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
)


def setup(app: web.Application, client_dir: Path) -> None:
    """Serve the single-page client at its entry paths and its files under /static/."""

    def page(filename: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.FileResponse(client_dir / filename)
            response.headers["Content-Security-Policy"] = CSP
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Cache-Control"] = "no-store"
            return response

        return handler

    for path, filename in PAGES.items():
        app.router.add_get(path, page(filename))
    app.router.add_static("/static/", client_dir, follow_symlinks=False)
