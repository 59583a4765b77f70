"""JSON REST API for staff: login, templates, consultations, participants. See docs/api.md."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from aiohttp import web

from server import consultations as svc
from server import invitations
from server import mail as mail_svc
from server.auth import COOKIE, current_staff
from server.consultations import TIME_EXAMPLE
from server.db.models import Consultation, Mail, Participant
from server.errors import ApiError, bad_request, not_found
from server.ratelimit import RateLimiter
from server.staff import authenticate
from server.state import DB, MAIL_SENDER, MAILER, SESSIONS, SETTINGS, TEMPLATES
from server.templates import Template

routes = web.RouteTableDef()
MAX_BODY = 64 * 1024
LOGIN_LIMITER = web.AppKey("login_limiter", RateLimiter)
MAIL_STATES = (mail_svc.QUEUED, mail_svc.SENT, mail_svc.OUTBOX, mail_svc.FAILED, mail_svc.CANCELLED)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 error that says what is wrong."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
    raw = await request.read()
    try:
        body = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    return body


def field(body: dict[str, Any], name: str, kind: type, required: bool = True) -> Any:
    """One field of a JSON body, checked for presence and type."""
    if name not in body or body[name] is None:
        if required:
            raise bad_request(f"{name} is required", name)
        return None
    value = body[name]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise bad_request(f"{name} must be a {kind.__name__}", name)
    return value


def parse_time(value: str, name: str) -> dt.datetime:
    """An ISO 8601 time with a time zone."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{name} must be an ISO 8601 time, e.g. {TIME_EXAMPLE}", name) from None
    if parsed.tzinfo is None:
        raise bad_request(f"{name} needs a time zone, e.g. {TIME_EXAMPLE}", name)
    return parsed


def template_of(request: web.Request, name: str) -> Template:
    """The loaded template with this name, or a 400 error naming the field."""
    templates = request.app[TEMPLATES]
    if name not in templates:
        raise bad_request(
            f"unknown template {name!r}; known: {', '.join(sorted(templates))}", "template"
        )
    return templates[name]


def consultation_json(consultation: Consultation, template: Template | None) -> dict[str, Any]:
    """What staff see of a consultation."""
    return {
        "id": consultation.public_id,
        "template": consultation.template,
        "template_label": (
            {"ja": template.label.ja, "en": template.label.en} if template else None
        ),
        "title": consultation.title,
        "starts_at": consultation.starts_at.isoformat(),
        "ends_at": consultation.ends_at.isoformat(),
        "duration_minutes": consultation.duration_minutes,
        "state": consultation.state,
        "locked": consultation.locked,
    }


def participant_json(participant: Participant, template: Template | None) -> dict[str, Any]:
    """What staff see of a participant; identity hidden where the template seals it."""
    sealed = template is not None and template.anonymity == "sealed"
    identity = participant.identity
    body: dict[str, Any] = {
        "id": participant.id,
        "role": participant.role,
        "display_name": participant.display_name,
        "anonymous": participant.pseudonym_number is not None,
    }
    if not (sealed and participant.pseudonym_number is not None):
        body["name"] = identity.name if identity else ""
        body["email"] = identity.email if identity else ""
    invitation = participant.invitation
    body["invitation"] = (
        None
        if invitation is None
        else {
            "join_id": invitation.join_id,
            "expires_at": invitation.expires_at.isoformat(),
            "revoked": invitation.revoked_at is not None,
        }
    )
    return body


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    """Log in as staff: sets the session cookie and returns the CSRF token."""
    address = request.remote or "?"
    if not request.app[LOGIN_LIMITER].allow(address):
        raise ApiError(429, "rate_limited", "Too many login attempts; wait a minute and retry.")
    body = await read_json(request)
    login_name = field(body, "login", str)
    password = field(body, "password", str)
    async with request.app[DB]() as session:
        staff = await authenticate(session, login_name, password)
    if staff is None:
        raise ApiError(401, "login_failed", "Wrong login or password.")
    key, staff_session = request.app[SESSIONS].create(staff.id, staff.login, staff.display_name)
    response = web.json_response(
        {
            "staff": {"login": staff.login, "display_name": staff.display_name},
            "csrf_token": staff_session.csrf_token,
        }
    )
    settings = request.app[SETTINGS]
    response.set_cookie(
        COOKIE,
        key,
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies or settings.tls_cert is not None,
        max_age=settings.session_max_age,
        path="/",
    )
    return response


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    """End the staff session."""
    current_staff(request)
    request.app[SESSIONS].drop(request.cookies.get(COOKIE))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    """The logged-in staff member and the CSRF token to send with changes."""
    staff = current_staff(request)
    return web.json_response(
        {
            "staff": {"login": staff.login, "display_name": staff.display_name},
            "csrf_token": staff.csrf_token,
        }
    )


@routes.get("/api/templates")
async def list_templates(request: web.Request) -> web.Response:
    """The consultation kinds staff can create."""
    current_staff(request)
    items = [
        {
            "name": t.name,
            "label": {"ja": t.label.ja, "en": t.label.en},
            "description": {"ja": t.description.ja, "en": t.description.en},
            "default_duration_minutes": t.default_duration_minutes,
            "max_duration_minutes": t.max_duration_minutes,
            "roles": [
                {
                    "name": r.name,
                    "label": {"ja": r.label.ja, "en": r.label.en},
                    "join": sorted(r.join),
                    "anonymous": r.anonymous,
                }
                for r in t.roles.values()
            ],
        }
        for t in sorted(request.app[TEMPLATES].values(), key=lambda t: t.name)
    ]
    return web.json_response({"templates": items})


@routes.post("/api/consultations")
async def create_consultation(request: web.Request) -> web.Response:
    """Create a consultation from a template."""
    staff = current_staff(request)
    body = await read_json(request)
    template = template_of(request, field(body, "template", str))
    title = field(body, "title", str)
    starts_at = parse_time(field(body, "starts_at", str), "starts_at")
    duration = field(body, "duration_minutes", int, required=False)
    closes = field(body, "registration_closes_at", str, required=False)
    closes_at = parse_time(closes, "registration_closes_at") if closes else None
    async with request.app[DB].begin() as session:
        consultation = await svc.create_consultation(
            session, template, title, starts_at, duration, staff.staff_id, closes_at
        )
    return web.json_response(consultation_json(consultation, template), status=201)


@routes.get("/api/consultations")
async def list_consultations(request: web.Request) -> web.Response:
    """Consultations, optionally filtered by ?state=."""
    current_staff(request)
    templates = request.app[TEMPLATES]
    async with request.app[DB]() as session:
        items = await svc.list_consultations(session, request.query.get("state"))
    return web.json_response(
        {"consultations": [consultation_json(c, templates.get(c.template)) for c in items]}
    )


@routes.get("/api/consultations/{id}")
async def get_consultation(request: web.Request) -> web.Response:
    """One consultation with its participants."""
    current_staff(request)
    async with request.app[DB]() as session:
        consultation = await svc.get_consultation(session, request.match_info["id"])
    template = request.app[TEMPLATES].get(consultation.template)
    body = consultation_json(consultation, template)
    body["participants"] = [participant_json(p, template) for p in consultation.participants]
    return web.json_response(body)


@routes.post("/api/consultations/{id}/participants")
async def add_participant(request: web.Request) -> web.Response:
    """Add a participant with a role; returns their join link, ID and passcode once."""
    current_staff(request)
    body = await read_json(request)
    role = field(body, "role", str)
    name = field(body, "name", str, required=False) or ""
    email = field(body, "email", str, required=False) or ""
    display_name = field(body, "display_name", str, required=False) or ""
    if email and ("@" not in email or len(email) > 320 or any(c.isspace() for c in email)):
        raise bad_request("email is not a valid address", "email")
    settings = request.app[SETTINGS]
    async with request.app[DB].begin() as session:
        consultation = await svc.get_consultation(session, request.match_info["id"])
        template = template_of(request, consultation.template)
        participant = await svc.add_participant(
            session,
            consultation,
            template,
            role,
            name=name,
            email=email,
            display_name=display_name,
        )
        issued = await svc.invite(
            session, participant, consultation, template, settings, request.app[MAILER]
        )
        await session.refresh(participant, ["identity", "invitation"])
        result = participant_json(participant, template)
    result["join"] = svc.secrets_json(issued)
    return web.json_response(result, status=201)


@routes.post("/api/consultations/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    """Cancel a consultation."""
    current_staff(request)
    async with request.app[DB].begin() as session:
        consultation = await svc.get_consultation(session, request.match_info["id"])
        await svc.cancel_consultation(session, consultation)
    template = request.app[TEMPLATES].get(consultation.template)
    return web.json_response(consultation_json(consultation, template))


def participant_of(consultation: Consultation, raw_id: str) -> Participant:
    """The participant with this id in this consultation, or a 404 error."""
    for participant in consultation.participants:
        if str(participant.id) == raw_id:
            return participant
    raise not_found("participant")


@routes.post("/api/consultations/{id}/participants/{participant}/resend")
async def resend_invitation(request: web.Request) -> web.Response:
    """New link and passcode for one participant (the old ones stop working), mailed again."""
    current_staff(request)
    settings = request.app[SETTINGS]
    async with request.app[DB].begin() as session:
        consultation = await svc.get_consultation(session, request.match_info["id"])
        if consultation.state in ("ended", "cancelled"):
            raise ApiError(409, "consultation_closed", f"the consultation is {consultation.state}")
        participant = participant_of(consultation, request.match_info["participant"])
        template = template_of(request, consultation.template)
        issued = await invitations.resend(
            session,
            participant,
            consultation,
            template,
            settings,
            mailer=request.app[MAILER],
            reminders=settings.reminders,
        )
    return web.json_response({"join": svc.secrets_json(issued), "mailed": issued.mailed})


@routes.post("/api/consultations/{id}/participants/{participant}/revoke")
async def revoke_invitation(request: web.Request) -> web.Response:
    """Stop one participant's link and passcode, and their reminders and unsent mail."""
    current_staff(request)
    async with request.app[DB].begin() as session:
        consultation = await svc.get_consultation(session, request.match_info["id"])
        participant = participant_of(consultation, request.match_info["participant"])
        revoked = await invitations.revoke(session, participant)
    return web.json_response({"revoked": revoked})


def mail_json(mail: Mail) -> dict[str, Any]:
    """What staff see of one mail: where it stands and why it failed."""
    return {
        "id": mail.id,
        "to": mail.to_address,
        "subject": mail.subject,
        "kind": mail.kind,
        "participant_id": mail.participant_id,
        "status": mail.status,
        "attempts": mail.attempts,
        "last_error": mail.last_error,
        "created_at": mail.created_at.isoformat(),
        "sent_at": mail.sent_at.isoformat() if mail.sent_at else None,
    }


@routes.get("/api/mail")
async def list_mail(request: web.Request) -> web.Response:
    """Mail for staff: queued, sent, in the outbox or failed (?status=)."""
    current_staff(request)
    status = request.query.get("status")
    if status is not None and status not in MAIL_STATES:
        raise bad_request(f"status must be one of {', '.join(MAIL_STATES)}", "status")
    async with request.app[DB]() as session:
        mails = await mail_svc.list_mail(session, status=status, limit=500)
    return web.json_response({"mail": [mail_json(m) for m in mails]})


@routes.post("/api/mail/{mail}/retry")
async def retry_mail(request: web.Request) -> web.Response:
    """Send a failed mail again."""
    current_staff(request)
    try:
        mail_id = int(request.match_info["mail"])
    except ValueError:
        raise not_found("mail") from None
    async with request.app[DB].begin() as session:
        retried = await mail_svc.retry_mail(session, mail_id)
    if not retried:
        raise ApiError(409, "not_failed", "only a failed mail can be retried")
    request.app[MAIL_SENDER].wake()
    return web.json_response({"retried": True})


@routes.get("/api/consultations/{id}/minutes")
async def minutes(request: web.Request) -> web.Response:
    """The event log of a consultation (joins, admissions, floor, chat), oldest first."""
    current_staff(request)
    async with request.app[DB]() as session:
        consultation = await svc.get_consultation(session, request.match_info["id"])
        events = await svc.list_events(session, consultation)
    names = {p.id: (p.display_name, p.role) for p in consultation.participants}
    items = []
    for event in events:
        who = names.get(event.participant_id) if event.participant_id is not None else None
        items.append(
            {
                "at": event.at.isoformat(),
                "kind": event.kind,
                "participant": None if who is None else {"name": who[0], "role": who[1]},
                "data": event.data,
            }
        )
    return web.json_response({"consultation": consultation.public_id, "events": items})
