"""The local outbox at /outbox: where mail goes when no SMTP server is configured."""

from __future__ import annotations

import html

from aiohttp import web

from server.auth import STAFF_SESSION
from server.mail import list_outbox
from server.pages import CSP
from server.state import DB

routes = web.RouteTableDef()


@routes.get("/outbox")
async def outbox(request: web.Request) -> web.Response:
    """Staff read the mails that would have been sent, newest first."""
    if request.get(STAFF_SESSION) is None:
        raise web.HTTPFound("/staff?next=/outbox")
    async with request.app[DB]() as session:
        mails = await list_outbox(session, limit=200)
    items = "\n".join(
        '<article class="mail">'
        f"<h2>{html.escape(m.subject)}</h2>"
        f"<p>宛先 To: {html.escape(m.to_address)} ・ {m.created_at:%Y-%m-%d %H:%M} UTC</p>"
        f"<pre>{html.escape(m.body)}</pre>"
        + "".join(
            f"<p>添付 Attachment: {html.escape(a.get('filename', ''))}</p>" for a in m.attachments
        )
        + "</article>"
        for m in mails
    )
    page = f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>送信メール (ローカル) — Local outbox</title>
<link rel="stylesheet" href="/static/css/outbox.css"></head>
<body><main><h1>送信メール (ローカル) <span lang="en">Local outbox</span></h1>
<p>SMTP サーバーが設定されていないため、送信されるはずのメールをここに表示しています。
<span lang="en">No SMTP server is configured: mail that would be sent is shown here.</span></p>
{items or "<p>メールはまだありません。 <span lang='en'>No mail yet.</span></p>"}
</main></body></html>"""
    response = web.Response(text=page, content_type="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    return response
