"""A demo consultation printed at start-up, so that a first run has something to join."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from aiohttp import web
from sqlalchemy import select

from server import consultations as svc
from server.db.models import Staff
from server.staff import add_staff
from server.state import DB, MAILER, SETTINGS, TEMPLATES

DEMO_STAFF = "demo"


async def create_demo(app: web.Application) -> list[str]:
    """Create a bereavement consultation and a public hearing; return the lines to print."""
    templates = app[TEMPLATES]
    settings = app[SETTINGS]
    mailer = app[MAILER]
    lines: list[str] = []
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=5)
    async with app[DB].begin() as session:
        staff = await session.scalar(select(Staff).where(Staff.login == DEMO_STAFF))
        if staff is None:
            password = secrets.token_urlsafe(9)
            staff = await add_staff(session, DEMO_STAFF, "デモ職員", password)
            (settings.data_dir / "demo-staff-password.txt").write_text(password + "\n")
        password_file = settings.data_dir / "demo-staff-password.txt"
        password_hint = (
            password_file.read_text().strip() if password_file.exists() else "(see staff add)"
        )
        lines.append(
            f"Staff console: {settings.base_url}/staff  login {DEMO_STAFF} / "
            f"password {password_hint}"
        )

        grief = templates["bereavement"]
        c = await svc.create_consultation(
            session, grief, "デモ: おくやみ相談 (山田家)", start, None, staff.id
        )
        lines.append(f"\n{grief.label.ja} / {grief.label.en}: ID {c.public_id}")
        people: list[tuple[str, dict[str, Any]]] = [
            ("staff", {"name": "市民課 佐藤", "display_name": "市民課 佐藤", "staff_id": staff.id}),
            ("heir", {"name": "山田 花子", "email": "hanako@example.org"}),
            ("heir", {"name": "山田 一郎", "email": "ichiro@example.org"}),
        ]
        for role, fields in people:
            p = await svc.add_participant(session, c, grief, role, **fields)
            join = await svc.invite(session, p, c, grief, settings, mailer)
            lines.append(f"  {p.display_name} ({role}): {join.link}")

        hearing = templates["public_hearing"]
        h = await svc.create_consultation(
            session, hearing, "デモ: 公聴会 (駅前再開発)", start, None, staff.id
        )
        lines.append(f"\n{hearing.label.ja} / {hearing.label.en}: ID {h.public_id}")
        chair = await svc.add_participant(
            session, h, hearing, "chair", name="議長 鈴木", display_name="議長 鈴木"
        )
        join = await svc.invite(session, chair, h, hearing, settings, mailer)
        lines.append(f"  {chair.display_name} (chair): {join.link}")
        resident = await svc.add_participant(
            session, h, hearing, "resident", name="田中 太郎", email="taro@example.org"
        )
        join = await svc.invite(session, resident, h, hearing, settings, mailer)
        lines.append(
            f"  {resident.display_name} (resident, anonymous): {settings.base_url}/join  "
            f"ID {join.join_id}  passcode {join.passcode}"
        )
    lines.append(f"\nMail outbox: {settings.base_url}/outbox")
    return lines


async def print_demo_on_startup(app: web.Application) -> None:
    """on_startup hook of `madoguchi serve --demo`."""
    lines = await create_demo(app)
    print("\n".join(["", "=== Demo consultations ===", *lines, ""]), flush=True)
