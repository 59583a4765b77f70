"""Small server-rendered pages (outbox, registration): plain HTML forms, no script needed."""

from __future__ import annotations

import html

from aiohttp import web

from server.pages import CSP


def esc(text: object) -> str:
    """Text made safe for HTML."""
    return html.escape(str(text), quote=True)


def page(title: str, body: str, status: int = 200) -> web.Response:
    """A complete Japanese-first page with the shared style sheet and strict headers."""
    text = f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} — 窓口 Madoguchi</title>
<link rel="stylesheet" href="/static/css/plain.css"></head>
<body><main>
{body}
</main></body></html>"""
    response = web.Response(text=text, content_type="text/html", status=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
