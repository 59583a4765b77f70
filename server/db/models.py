"""Database models. Identity (name, email) lives apart from what other participants see."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every Madoguchi table."""


class Staff(Base):
    """A city-hall staff account that logs in with a password."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consultation(Base):
    """One scheduled session made from a template."""

    __tablename__ = "consultation"

    id: Mapped[int] = mapped_column(primary_key=True)
    # the number people type or read on the phone; unique, not sequential
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    template: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    # scheduled | live | ended | cancelled
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    registration_closes_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    participants: Mapped[list[Participant]] = relationship(
        back_populates="consultation", cascade="all, delete-orphan", order_by="Participant.id"
    )

    @property
    def ends_at(self) -> dt.datetime:
        """When the consultation is scheduled to end."""
        return self.starts_at + dt.timedelta(minutes=self.duration_minutes)


class Participant(Base):
    """Someone invited to or registered for a consultation, with a role."""

    __tablename__ = "participant"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(64))
    # what other participants see: a display name, or a pseudonym such as 参加者 7
    display_name: Mapped[str] = mapped_column(String(100))
    # the number in the pseudonym, unique within the consultation; None when not anonymous
    pseudonym_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    consultation: Mapped[Consultation] = relationship(back_populates="participants")
    identity: Mapped[Identity | None] = relationship(
        back_populates="participant", cascade="all, delete-orphan", uselist=False
    )
    invitation: Mapped[Invitation | None] = relationship(
        back_populates="participant", cascade="all, delete-orphan", uselist=False
    )

    __table_args__ = (Index("ix_participant_consultation", "consultation_id"),)


class Identity(Base):
    """Who a participant really is; read only by the server and roles with see_identities."""

    __tablename__ = "identity"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")

    participant: Mapped[Participant] = relationship(back_populates="identity")


class Invitation(Base):
    """How one participant gets in: a personal link token and/or an ID + passcode."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), unique=True
    )
    # sha256 of the link token; the token itself is only ever in the link
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # the personal ID typed with the passcode
    join_id: Mapped[str] = mapped_column(String(16), unique=True)
    passcode_hash: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    participant: Mapped[Participant] = relationship(back_populates="invitation")


class Event(Base):
    """One line of a consultation's event log: join, leave, admit, floor, chat, ..."""

    __tablename__ = "event"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="SET NULL"), nullable=True
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_event_consultation_at", "consultation_id", "at"),)


class Mail(Base):
    """A queued outgoing mail; sent by SMTP, or kept in the local outbox."""

    __tablename__ = "mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # attachments as [{"filename", "content_type", "content"}], content as text
    attachments: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # queued | sent | outbox (kept for /outbox, no SMTP) | failed (gave up) | cancelled
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # invitation | reminder | "" (other); with participant_id, lets staff see who got what
    kind: Mapped[str] = mapped_column(String(32), default="")
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="SET NULL", name="fk_mail_participant"),
        nullable=True,
    )

    __table_args__ = (Index("ix_mail_status_next_attempt", "status", "next_attempt_at"),)


class Reminder(Base):
    """A reminder mail to one participant, due at a time; queued exactly once."""

    __tablename__ = "reminder"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # pending | queued (its mail is in the mail table) | cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    queued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_reminder_status_due", "status", "due_at"),
        Index("ix_reminder_participant", "participant_id"),
    )


class Registration(Base):
    """A resident's pre-registration for a public consultation, confirmed by a mailed link."""

    __tablename__ = "registration"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id", ondelete="CASCADE"))
    # lowercased; one registration per address and consultation
    email: Mapped[str] = mapped_column(String(320))
    # asked only where the template wants it; stays with the registrar
    name: Mapped[str] = mapped_column(String(200), default="")
    # sha256 of the confirmation token in the mailed link
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("consultation_id", "email", name="uq_registration_email"),)
