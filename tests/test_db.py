"""Migrations build exactly the models' schema on SQLite and PostgreSQL; the models round-trip."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, func, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.db.engine import make_engine, make_sessionmaker
from server.db.migrate import current_revision, downgrade, head_revision, upgrade
from server.db.models import (
    Base,
    Consultation,
    Event,
    Identity,
    Invitation,
    Mail,
    Participant,
    Staff,
)

START = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'madoguchi.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the migrated database."""
    await upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


def _diffs(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def _count(session: AsyncSession, model: type[Base]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _consultation(public_id: str = "12345678") -> Consultation:
    return Consultation(
        public_id=public_id,
        template="bereavement",
        title="おくやみ相談",
        starts_at=START,
        duration_minutes=60,
    )


def _participant_with_everything(consultation: Consultation, n: int = 1) -> Participant:
    participant = Participant(role="heir", display_name=f"相続人 {n}")
    participant.identity = Identity(name=f"山田 花子 {n}", email=f"hanako{n}@example.jp")
    participant.invitation = Invitation(
        token_hash=f"{n:064x}",
        join_id=f"{n:08d}",
        passcode_hash="$argon2id$fake",
        expires_at=consultation.ends_at,
    )
    consultation.participants.append(participant)
    return participant


async def test_migrations_on_an_empty_database_reach_head_and_match_the_models(
    db_url: str,
) -> None:
    assert current_revision(db_url) is None
    await upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    engine = make_engine(db_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_diffs) == []
    finally:
        await engine.dispose()


async def test_upgrade_twice_is_a_no_op_and_downgrade_empties_the_database(db_url: str) -> None:
    await upgrade(db_url)
    await upgrade(db_url)
    await downgrade(db_url, "base")
    assert current_revision(db_url) is None
    engine = make_engine(db_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
    finally:
        await engine.dispose()


async def test_upgrading_from_the_first_revision_keeps_queued_mail(db_url: str) -> None:
    await upgrade(db_url, "0001")
    engine = make_engine(db_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO mail (to_address, subject, body, attachments, status, attempts,"
                    " next_attempt_at, last_error, created_at) VALUES ('a@x.jp', 's', 'b', '[]',"
                    " 'queued', 0, :t, '', :t)"
                ),
                {"t": START},
            )
        await upgrade(db_url)
        async with make_sessionmaker(engine)() as session:
            mail = (await session.scalars(select(Mail))).one()
        assert (mail.to_address, mail.kind, mail.participant_id) == ("a@x.jp", "", None)
    finally:
        await engine.dispose()


async def test_every_model_round_trips(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        staff = Staff(login="tanaka", display_name="田中", password_hash="$argon2id$x")
        consultation = _consultation()
        session.add(staff)
        await session.flush()
        consultation.created_by = staff.id
        participant = _participant_with_everything(consultation)
        session.add(consultation)
        await session.flush()
        session.add(
            Event(
                consultation_id=consultation.id,
                kind="join",
                participant_id=participant.id,
                data={"via": "link", "名前": "花子"},
            )
        )
        session.add(
            Mail(
                to_address="hanako1@example.jp",
                subject="ご案内 / Invitation",
                body="本文\nbody",
                attachments=[
                    {"filename": "a.ics", "content_type": "text/calendar", "content": "X"}
                ],
            )
        )

    async with sessions() as session:
        staff2 = (await session.scalars(select(Staff))).one()
        assert (staff2.login, staff2.display_name, staff2.disabled) == ("tanaka", "田中", False)
        assert staff2.created_at.tzinfo is not None
        got = (await session.scalars(select(Consultation))).one()
        assert (got.public_id, got.title, got.state, got.locked) == (
            "12345678",
            "おくやみ相談",
            "scheduled",
            False,
        )
        assert got.starts_at == START and got.starts_at.utcoffset() == dt.timedelta(0)
        assert got.created_by == staff2.id
        person = (await session.scalars(select(Participant))).one()
        assert (person.role, person.display_name) == ("heir", "相続人 1")
        assert person.pseudonym_number is None
        identity = await session.get(Identity, person.id)
        assert identity is not None and identity.email == "hanako1@example.jp"
        invitation = (await session.scalars(select(Invitation))).one()
        assert invitation.participant_id == person.id
        assert invitation.expires_at == START + dt.timedelta(minutes=60)
        assert (invitation.failed_attempts, invitation.locked_until) == (0, None)
        event = (await session.scalars(select(Event))).one()
        assert event.data == {"via": "link", "名前": "花子"} and event.kind == "join"
        mail = (await session.scalars(select(Mail))).one()
        assert mail.attachments[0]["filename"] == "a.ics"
        assert (mail.status, mail.attempts, mail.sent_at) == ("queued", 0, None)
        assert mail.next_attempt_at.tzinfo is not None


async def test_a_failing_transaction_leaves_nothing_half_written(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        first = _consultation("11111111")
        _participant_with_everything(first, 1)
        session.add(first)

    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            second = _consultation("22222222")
            _participant_with_everything(second, 2)
            # the same personal ID as the first consultation's: the last insert fails
            clash = _participant_with_everything(second, 3)
            assert clash.invitation is not None
            clash.invitation.join_id = f"{1:08d}"
            session.add(second)

    async with sessions() as session:
        assert await _count(session, Consultation) == 1
        assert await _count(session, Participant) == 1
        assert await _count(session, Identity) == 1
        assert await _count(session, Invitation) == 1


async def test_participant_identity_is_stored_apart_from_what_others_see(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with engine.connect() as connection:
        columns = await connection.run_sync(
            lambda c: {col["name"] for col in inspect(c).get_columns("participant")}
        )
    assert "display_name" in columns
    assert not {"name", "email"} & columns

    async with sessions() as session, session.begin():
        consultation = _consultation()
        participant = Participant(role="resident", display_name="参加者 7", pseudonym_number=7)
        participant.identity = Identity(name="匿名 太郎", email="taro@example.jp")
        consultation.participants.append(participant)
        session.add(consultation)

    async with sessions() as session:
        # what other participants are shown comes from this one table, without the identity
        row = (await session.execute(select(Participant.__table__))).one()
        assert "taro@example.jp" not in [str(v) for v in row]
        identity = (await session.scalars(select(Identity))).one()
        assert (identity.name, identity.email) == ("匿名 太郎", "taro@example.jp")


@pytest.mark.parametrize("how", ["orm", "sql"])
async def test_deleting_a_consultation_deletes_its_participants_identities_and_invitations(
    sessions: async_sessionmaker[AsyncSession], how: str
) -> None:
    async with sessions() as session, session.begin():
        doomed, kept = _consultation("11111111"), _consultation("22222222")
        for n in (1, 2):
            _participant_with_everything(doomed, n)
        _participant_with_everything(kept, 3)
        session.add_all([doomed, kept])
        await session.flush()
        session.add(Event(consultation_id=doomed.id, kind="created", data={}))
        session.add(Event(consultation_id=kept.id, kind="created", data={}))

    async with sessions() as session, session.begin():
        if how == "orm":
            target = await session.get(Consultation, doomed.id)
            await session.delete(target)
        else:
            # ON DELETE CASCADE in the schema, not only in the ORM
            await session.execute(delete(Consultation).where(Consultation.id == doomed.id))

    async with sessions() as session:
        assert await _count(session, Consultation) == 1
        assert await _count(session, Participant) == 1
        assert await _count(session, Identity) == 1
        assert await _count(session, Invitation) == 1
        assert await _count(session, Event) == 1
        left = (await session.scalars(select(Identity))).one()
        assert left.email == "hanako3@example.jp"


async def test_many_passcode_checks_at_once_on_a_busy_event_loop_all_succeed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A hearing's residents join together while the loop is busy forwarding media.

    Each check writes twice (count the attempt, then clear it). Writes held open across trips
    through a busy event loop made SQLite waiters time out with "database is locked".
    """
    from argon2 import PasswordHasher

    from server.invitations import verify_passcode

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    residents = 40
    async with sessions.begin() as session:
        consultation = _consultation()
        for n in range(1, residents + 1):
            participant = _participant_with_everything(consultation, n)
            assert participant.invitation is not None
            participant.invitation.passcode_hash = cheap.hash(f"{n:06d}")
        session.add(consultation)
    busy = asyncio.Event()

    async def hog() -> None:  # the forwarding path: the loop is rarely free for long
        while not busy.is_set():
            time.sleep(0.03)  # noqa: ASYNC251 - blocking on purpose: a busy loop
            await asyncio.sleep(0)

    async def check(n: int) -> bool:
        async with sessions() as session:
            result = await verify_passcode(
                session, f"{n:08d}", f"{n:06d}", START - dt.timedelta(hours=1), hasher=cheap
            )
            return result.ok

    hogging = asyncio.create_task(hog())
    try:
        results = await asyncio.gather(*(check(n) for n in range(1, residents + 1)))
    finally:
        busy.set()
        await hogging
    assert results == [True] * residents
    async with sessions() as session:
        counts = (await session.scalars(select(Invitation.failed_attempts))).all()
    assert set(counts) == {0}


async def test_a_burst_of_sessions_on_sqlite_shares_a_few_connections(tmp_path: Path) -> None:
    """A join storm opens sessions all at once: on a SQLite file they queue for a few
    connections (each is an aiosqlite thread) instead of opening up to fifteen."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'madoguchi.sqlite3'}"
    await upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    peak = 0

    async def one() -> int:
        nonlocal peak
        async with sessions() as session:
            value = (await session.execute(select(func.count()).select_from(Staff))).scalar_one()
            peak = max(peak, engine.pool.checkedout())  # type: ignore[attr-defined]
            await session.execute(select(func.count()).select_from(Consultation))
            return int(value)

    try:
        assert await asyncio.gather(*(one() for _ in range(40))) == [0] * 40
        assert 1 <= peak <= 4
    finally:
        await engine.dispose()


async def test_a_passcode_check_holds_no_database_connection_while_it_hashes(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Hashes queue on one thread in a join storm; a check waiting there must not keep one
    of the pool's few connections (with the SQLite file's 4, a storm would time out)."""
    from argon2 import PasswordHasher

    from server import hashing
    from server.invitations import verify_passcode

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    async with sessions.begin() as session:
        consultation = _consultation()
        participant = _participant_with_everything(consultation)
        assert participant.invitation is not None
        participant.invitation.passcode_hash = cheap.hash("000001")
        session.add(consultation)
    before, after_end = START - dt.timedelta(hours=1), START + dt.timedelta(days=1)
    cases = [
        ("99999999", before, False),
        ("00000001", after_end, False),
        ("00000001", before, True),
    ]
    for join_id, now, expected in cases:  # unknown ID, expired invitation, right passcode
        gate = threading.Event()
        hashing._worker.submit(gate.wait)  # the hashing thread is busy: the check waits in line

        async def check(join_id: str = join_id, now: dt.datetime = now) -> bool:
            async with sessions() as session:
                return (await verify_passcode(session, join_id, "000001", now, hasher=cheap)).ok

        task = asyncio.create_task(check())
        try:
            # until the check's hash is queued (a thread pool's queue has no event to await)
            while hashing._worker._work_queue.qsize() == 0 and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        finally:
            gate.set()
        assert await task is expected
