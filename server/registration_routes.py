"""Public registration routes: a JSON API and the same steps as plain HTML forms."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import consultations as svc
from server import registration as reg
from server.db.models import Consultation, utcnow
from server.errors import ApiError
from server.html import esc, page
from server.ratelimit import RateLimiter
from server.rest import field, read_json
from server.state import DB, MAILER, SETTINGS, TEMPLATES
from server.templates import Template

routes = web.RouteTableDef()
# registrations and confirmations per client address per minute
REGISTRATION_LIMITER = web.AppKey("registration_limiter", RateLimiter)
REGISTRATION_LIMIT = 10

MESSAGES_JA = {
    "not_found": "この説明会・公聴会は登録を受け付けていません。URLをご確認ください。",
    "consultation_closed": "この会は終了したか、中止になりました。",
    "registration_closed": "登録の受付は終了しました。",
    "invalid": "メールアドレスの形式が正しくありません。もう一度入力してください。",
    "rate_limited": "短い時間に何度も送信されました。1分ほど待ってから、もう一度お試しください。",
    "invalid_link": "このリンクは無効です。メールのリンクをもう一度お確かめください。",
    "link_expired": "このリンクの有効期限が切れました。お手数ですが、もう一度登録してください。",
    "role_full": "定員に達したため、登録を受け付けられません。",
}


def setup(app: web.Application) -> None:
    """Register the routes and their rate limiter."""
    app[REGISTRATION_LIMITER] = RateLimiter(REGISTRATION_LIMIT, 60.0)
    app.add_routes(routes)


def _limit(request: web.Request) -> None:
    if not request.app[REGISTRATION_LIMITER].allow(request.remote or "?"):
        raise ApiError(429, "rate_limited", "Too many requests; wait a minute and retry.")


async def _open_consultation(request: web.Request) -> tuple[Consultation, Template]:
    async with request.app[DB]() as session:
        consultation = await svc.get_consultation(session, request.match_info["id"])
    template = request.app[TEMPLATES].get(consultation.template)
    if template is None or reg.registering_role(template) is None:
        raise ApiError(404, "not_found", "this consultation takes no registration")
    return consultation, template


def _public_json(consultation: Consultation, template: Template) -> dict[str, Any]:
    now = utcnow()
    open_ = consultation.state not in ("ended", "cancelled") and now < reg.closes_at(consultation)
    return {
        "id": consultation.public_id,
        "title": consultation.title,
        "template_label": {"ja": template.label.ja, "en": template.label.en},
        "starts_at": consultation.starts_at.isoformat(),
        "ends_at": consultation.ends_at.isoformat(),
        "closes_at": reg.closes_at(consultation).isoformat(),
        "open": open_,
    }


async def _register(request: web.Request, email: str, name: str) -> None:
    _limit(request)
    async with request.app[DB].begin() as session:
        consultation = await svc.get_consultation(session, request.match_info["id"])
        template = request.app[TEMPLATES].get(consultation.template)
        if template is None:
            raise ApiError(404, "not_found", "this consultation takes no registration")
        await reg.register(
            session,
            consultation,
            template,
            request.app[SETTINGS],
            request.app[MAILER],
            email,
            name,
        )


async def _confirm(request: web.Request, token: str) -> reg.Confirmed:
    _limit(request)
    if not token or len(token) > 256:
        raise ApiError(404, "invalid_link", "this confirmation link is not valid")
    app = request.app
    async with app[DB].begin() as session:
        return await reg.confirm(session, app[TEMPLATES], app[SETTINGS], app[MAILER], token)


# --- JSON API ---------------------------------------------------------------------------------


@routes.get("/api/public/consultations/{id}/registration")
async def registration_info(request: web.Request) -> web.Response:
    """What the registration page shows: title, time, whether registration is open."""
    consultation, template = await _open_consultation(request)
    return web.json_response(_public_json(consultation, template))


@routes.post("/api/public/consultations/{id}/registration")
async def register_json(request: web.Request) -> web.Response:
    """Register an address; the answer is the same whether or not it was registered before."""
    body = await read_json(request)
    await _register(request, field(body, "email", str), field(body, "name", str, False) or "")
    return web.json_response({"status": "check_mail"}, status=202)


@routes.post("/api/public/registrations/confirm")
async def confirm_json(request: web.Request) -> web.Response:
    """Confirm by the token of the mailed link; the ID and passcode are shown once."""
    body = await read_json(request)
    result = await _confirm(request, field(body, "token", str))
    consultation = {"id": result.consultation.public_id, "title": result.consultation.title}
    if result.secrets is None:
        return web.json_response({"status": "already_confirmed", "consultation": consultation})
    return web.json_response(
        {
            "status": "confirmed",
            "consultation": consultation,
            "join_id": result.secrets.join_id,
            "passcode": result.secrets.passcode,
            "join_url": f"{request.app[SETTINGS].base_url}/join",
        }
    )


# --- HTML forms -------------------------------------------------------------------------------


def _error_page(error: ApiError) -> web.Response:
    message = MESSAGES_JA.get(error.code, "エラーが発生しました。時間をおいてお試しください。")
    return page(
        "登録できませんでした",
        f'<h1>登録できませんでした</h1><p class="error" role="alert">{esc(message)}'
        f'<span class="en" lang="en">{esc(error.message)}</span></p>',
        status=error.status,
    )


def _form(consultation: Consultation, template: Template) -> str:
    info = _public_json(consultation, template)
    head = (
        f"<h1>{esc(consultation.title)}<span class='en' lang='en'>{esc(template.label.en)}"
        "</span></h1>"
        f"<p>{esc(template.label.ja)}・{esc(consultation.starts_at.isoformat())}</p>"
    )
    if not info["open"]:
        return (
            head + '<p class="error" role="alert">登録の受付は終了しました。'
            '<span class="en" lang="en">Registration has closed.</span></p>'
        )
    return (
        head
        + f"""
<p>メールアドレスを入力して「登録する」を押してください。確認のメールをお送りします。
<span class="en" lang="en">Enter your email address; we will send you a mail to confirm.</span></p>
<p>参加者のお名前は他の参加者には表示されません（「参加者 1」のような番号で表示されます）。
<span class="en" lang="en">Other participants never see your name: they see a number.</span></p>
<form method="post" action="/register/{esc(consultation.public_id)}">
<label for="email">メールアドレス（必須）<span class="en" lang="en">Email (required)</span></label>
<input id="email" name="email" type="email" required autocomplete="email" maxlength="254">
<label for="name">お名前（任意・登録担当者のみが確認します）
<span class="en" lang="en">Name (optional; seen only by the registrar)</span></label>
<input id="name" name="name" type="text" autocomplete="name" maxlength="200">
<button type="submit">登録する <span lang="en">Register</span></button>
</form>"""
    )


@routes.get("/register/{id}")
async def register_page(request: web.Request) -> web.Response:
    """The registration form."""
    try:
        consultation, template = await _open_consultation(request)
    except ApiError as error:
        return _error_page(error)
    return page("参加登録", _form(consultation, template))


@routes.post("/register/{id}")
async def register_form(request: web.Request) -> web.Response:
    """The form's submission: always 'check your mail' unless the input is wrong."""
    form = await request.post()
    try:
        await _register(request, str(form.get("email", "")), str(form.get("name", "")))
    except ApiError as error:
        return _error_page(error)
    return page(
        "メールをご確認ください",
        '<h1>メールをご確認ください<span class="en" lang="en">Please check your mail</span></h1>'
        '<p class="notice" role="status">入力されたアドレスに確認のメールをお送りしました。'
        "メールのリンクを開いて、登録を完了してください。"
        '<span class="en" lang="en">We sent a mail to the address you entered. Open its link '
        "to complete your registration.</span></p>",
    )


@routes.get("/r/{token}")
async def confirm_page(request: web.Request) -> web.Response:
    """The confirmation step; a button, because mail scanners open links by themselves."""
    token = esc(request.match_info["token"])
    return page(
        "登録の完了",
        '<h1>登録の完了<span class="en" lang="en">Complete your registration</span></h1>'
        "<p>次のボタンを押すと登録が完了し、参加用のIDとパスコードが表示されます。"
        '<span class="en" lang="en">Press the button to complete your registration and see '
        "your ID and passcode.</span></p>"
        f'<form method="post" action="/r/{token}"><button type="submit">登録を完了する '
        '<span lang="en">Complete registration</span></button></form>',
    )


@routes.post("/r/{token}")
async def confirm_form(request: web.Request) -> web.Response:
    """Confirm and show the ID and passcode (also mailed)."""
    try:
        result = await _confirm(request, request.match_info["token"])
    except ApiError as error:
        return _error_page(error)
    title = esc(result.consultation.title)
    if result.secrets is None:
        return page(
            "登録済みです",
            f"<h1>登録済みです<span class='en' lang='en'>Already registered</span></h1>"
            f"<p>「{title}」の登録は完了しています。IDとパスコードはメールをご覧ください。"
            "<span class='en' lang='en'>Your ID and passcode are in the mail we sent.</span></p>",
        )
    base = request.app[SETTINGS].base_url
    return page(
        "登録が完了しました",
        f"<h1>登録が完了しました<span class='en' lang='en'>You are registered</span></h1>"
        f"<p>「{title}」当日は <a href='{esc(base)}/join'>{esc(base)}/join</a> を開き、"
        "次のIDとパスコードを入力してください。同じ内容をメールでもお送りしました。"
        "<span class='en' lang='en'>On the day, open the join page and enter this ID and "
        "passcode. We also mailed them to you.</span></p>"
        f"<p>ID: <span class='secret'>{esc(result.secrets.join_id)}</span></p>"
        f"<p>パスコード Passcode: <span class='secret'>{esc(result.secrets.passcode)}</span></p>",
    )
