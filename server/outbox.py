"""The local outbox at /outbox: where mail goes when no SMTP server is configured."""

from __future__ import annotations

from aiohttp import web

from server.auth import STAFF_SESSION
from server.html import esc, page
from server.mail import list_outbox
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
        f"<h2>{esc(m.subject)}</h2>"
        f"<p>宛先 To: {esc(m.to_address)} ・ {m.created_at:%Y-%m-%d %H:%M} UTC</p>"
        f"<pre>{esc(m.body)}</pre>"
        + "".join(f"<p>添付 Attachment: {esc(a.get('filename', ''))}</p>" for a in m.attachments)
        + "</article>"
        for m in mails
    )
    return page(
        "送信メール (ローカル)",
        '<h1>送信メール (ローカル)<span class="en" lang="en">Local outbox</span></h1>'
        "<p>SMTP サーバーが設定されていないため、送信されるはずのメールをここに表示しています。"
        '<span class="en" lang="en">No SMTP server is configured: mail that would be sent is '
        "shown here.</span></p>"
        + (
            items or '<p>メールはまだありません。<span class="en" lang="en">No mail yet.</span></p>'
        ),
    )
