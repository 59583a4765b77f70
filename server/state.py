"""Typed application state: everything hangs off the app made by create_app(settings)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.auth import SessionStore
from server.mail import Mailer, MailSender
from server.settings import Settings
from server.templates import Template

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
DB = web.AppKey("db", async_sessionmaker[AsyncSession])
TEMPLATES = web.AppKey("templates", dict[str, Template])
SESSIONS = web.AppKey("sessions", SessionStore)
MAILER = web.AppKey("mailer", Mailer)
MAIL_SENDER = web.AppKey("mail_sender", MailSender)
