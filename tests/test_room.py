"""Room logic without network: lobby, hand queue, floor, moderation, chat, anonymity."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.permissions import Permission
from server.room import Member, Message, Room, RoomError
from server.templates import Template, load_template

TEMPLATES = Path(__file__).resolve().parent.parent / "consult_templates"


def template(name: str) -> Template:
    return load_template(TEMPLATES / f"{name}.toml")


class FakeTimer:
    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delay = delay
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        assert not self.cancelled
        self.callback()


class Hooks:
    def __init__(self) -> None:
        self.gates: list[tuple[str, str, bool]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.closed: list[tuple[str, str]] = []

    def media_gate(self, member: Member, kind: str, open_: bool) -> None:
        self.gates.append((member.id, kind, open_))

    def log(self, kind: str, member: Member | None, data: dict[str, Any]) -> None:
        self.events.append((kind, data))

    def close_member(self, member: Member, reason: str) -> None:
        self.closed.append((member.id, reason))


class World:
    """A room with fake hooks, a fake clock and timers, and members that record messages."""

    def __init__(self, template_name: str) -> None:
        self.hooks = Hooks()
        self.timers: list[FakeTimer] = []
        self.now = 1000.0
        self.room = Room(
            template(template_name),
            {"id": "12345678", "title": "test"},
            self.hooks,
            schedule=self._schedule,
            clock=lambda: self.now,
        )
        self.inbox: dict[str, list[Message]] = {}
        self._next = 0

    def _schedule(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(delay, callback)
        self.timers.append(timer)
        return timer

    def join(self, role: str, name: str = "", identity: tuple[str, str] | None = None) -> Member:
        self._next += 1
        spec = self.room.template.roles[role]
        pseudonym = self._next if spec.anonymous else None
        member = Member(
            participant_id=self._next,
            role=spec,
            name=f"参加者 {pseudonym}" if pseudonym else name,
            pseudonym=pseudonym,
            identity=identity,
        )
        box: list[Message] = []
        self.inbox[member.id] = box
        member.send = box.append
        box.append(self.room.enter(member))
        return member

    def of(self, member: Member, kind: str) -> list[Message]:
        return [m for m in self.inbox[member.id] if m["type"] == kind]


def hearing() -> tuple[World, Member, Member, list[Member]]:
    world = World("public_hearing")
    chair = world.join("chair", "議長 山田")
    registrar = world.join("registrar", "受付 佐藤")
    residents = [
        world.join("resident", identity=(f"Resident Name {i}", f"r{i}@example.jp"))
        for i in range(3)
    ]
    for resident in residents:
        world.room.admit(chair, resident.id)
    return world, chair, registrar, residents


def test_a_lobby_role_waits_until_admitted_and_staff_see_the_lobby_live() -> None:
    world = World("bereavement")
    staff = world.join("staff", "職員 田中")
    heir = world.join("heir", "鈴木 花子")
    assert world.inbox[heir.id][-1]["type"] == "lobby"
    assert [v["id"] for v in world.of(staff, "lobby_changed")[-1]["lobby"]] == [heir.id]
    world.room.admit(staff, heir.id)
    assert world.inbox[heir.id][-1]["type"] == "joined"
    assert world.of(staff, "participant_joined")[-1]["participant"]["name"] == "鈴木 花子"
    assert world.of(staff, "lobby_changed")[-1]["lobby"] == []


def test_deny_sends_denied_and_closes_the_connection() -> None:
    world = World("bereavement")
    staff = world.join("staff", "職員")
    heir = world.join("heir", "heir")
    world.room.deny(staff, heir.id)
    assert world.inbox[heir.id][-1] == {"type": "denied"}
    assert (heir.id, "denied") in world.hooks.closed
    assert heir.id not in world.room.members


def test_hand_queue_is_ordered_and_the_same_for_everyone() -> None:
    world, chair, registrar, (a, b, c) = hearing()
    for member in (b, a, c):
        world.room.raise_hand(member)
    world.room.raise_hand(b)  # twice: no effect
    for viewer in (chair, registrar, a, b, c):
        assert world.of(viewer, "hands")[-1]["queue"] == [b.id, a.id, c.id]
    world.room.lower_hand(a)
    assert world.of(c, "hands")[-1]["queue"] == [b.id, c.id]


def test_granting_the_floor_opens_only_the_holders_microphone() -> None:
    world, chair, _, (a, b, _c) = hearing()
    world.room.published(a, "audio", True)
    world.room.published(b, "audio", True)
    assert world.hooks.gates == [(a.id, "audio", False), (b.id, "audio", False)]
    world.room.raise_hand(b)
    world.room.raise_hand(a)
    world.room.grant_floor(chair)
    assert world.room.floor_holder == b.id
    assert world.hooks.gates[-1] == (b.id, "audio", True)
    assert world.room.hands == [a.id]
    world.room.grant_floor(chair)  # next: a; b loses it
    assert (b.id, "audio", False) in world.hooks.gates[-2:]
    assert world.hooks.gates[-1] == (a.id, "audio", True)
    world.room.revoke_floor(chair)
    assert world.hooks.gates[-1] == (a.id, "audio", False)
    assert world.of(a, "floor")[-1]["reason"] == "revoked"
    kinds = [kind for kind, _ in world.hooks.events]
    assert kinds.count("floor_granted") == 2 and "floor_ended" in kinds


def test_a_timed_turn_ends_by_itself_with_a_countdown_everyone_sees() -> None:
    world, chair, _, (a, _b, _c) = hearing()
    world.room.published(a, "audio", True)
    world.room.raise_hand(a)
    world.room.grant_floor(chair)
    floor = world.of(a, "floor")[-1]
    assert floor["ends_at"] == int((1000.0 + 180) * 1000)
    assert floor["turn_seconds"] == 180
    timer = world.timers[-1]
    assert timer.delay == 180
    timer.fire()
    assert world.room.floor_holder is None
    assert world.of(chair, "floor")[-1]["reason"] == "time_up"
    assert world.hooks.gates[-1] == (a.id, "audio", False)


def test_revoking_cancels_the_turn_timer() -> None:
    world, chair, _, (a, _b, _c) = hearing()
    world.room.grant_floor(chair, a.id)
    world.room.revoke_floor(chair)
    assert world.timers[-1].cancelled


def test_grant_floor_with_an_empty_queue_is_refused() -> None:
    world, chair, _, _ = hearing()
    with pytest.raises(RoomError) as error:
        world.room.grant_floor(chair)
    assert error.value.code == "queue_empty"


def test_floor_messages_in_an_open_template_are_refused() -> None:
    world = World("bereavement")
    staff = world.join("staff", "職員")
    with pytest.raises(RoomError) as error:
        world.room.raise_hand(staff)
    assert error.value.code == "no_floor_control"


FORBIDDEN: list[tuple[str, str, Callable[[Room, Member, Member], None], str]] = [
    ("resident", "grant_floor", lambda r, a, t: r.grant_floor(a, t.id), "grant_floor"),
    ("resident", "revoke_floor", lambda r, a, t: r.revoke_floor(a), "grant_floor"),
    ("resident", "lower another's hand", lambda r, a, t: r.lower_hand(a, t.id), "grant_floor"),
    ("resident", "admit", lambda r, a, t: r.admit(a, t.id), "admit"),
    ("resident", "deny", lambda r, a, t: r.deny(a, t.id), "admit"),
    ("resident", "mute", lambda r, a, t: r.mute(a, t.id, "audio"), "mute_others"),
    ("resident", "ask_unmute", lambda r, a, t: r.ask_unmute(a, t.id, "audio"), "mute_others"),
    ("resident", "remove", lambda r, a, t: r.remove(a, t.id), "remove"),
    ("resident", "lock", lambda r, a, t: r.lock(a, True), "admit"),
    ("resident", "end", lambda r, a, t: r.end(a), "remove"),
    ("resident", "camera on", lambda r, a, t: r.set_media(a, {"video": True}), "publish_video"),
    ("resident", "screen on", lambda r, a, t: r.set_media(a, {"screen": True}), "publish_screen"),
    ("registrar", "camera on", lambda r, a, t: r.set_media(a, {"video": True}), "publish_video"),
    ("panel", "remove", lambda r, a, t: r.remove(a, t.id), "remove"),
    ("panel", "grant_floor", lambda r, a, t: r.grant_floor(a, t.id), "grant_floor"),
    ("panel", "mute", lambda r, a, t: r.mute(a, t.id, "audio"), "mute_others"),
]


@pytest.mark.parametrize(
    ("role", "action", "attempt", "permission"),
    FORBIDDEN,
    ids=[f"{role} may not {action}" for role, action, _, _ in FORBIDDEN],
)
def test_an_action_without_permission_is_refused_with_forbidden(
    role: str, action: str, attempt: Callable[[Room, Member, Member], None], permission: str
) -> None:
    world, chair, _, residents = hearing()
    actor = residents[0] if role == "resident" else world.join(role, role)
    if not actor.admitted:
        world.room.admit(chair, actor.id)
    target = residents[1]
    with pytest.raises(RoomError) as error:
        attempt(world.room, actor, target)
    assert error.value.code == "forbidden"
    assert error.value.extra["permission"] == permission


def test_a_bereavement_heir_may_not_moderate() -> None:
    world = World("bereavement")
    staff = world.join("staff", "職員")
    heir = world.join("heir", "heir")
    world.room.admit(staff, heir.id)
    for attempt in (
        lambda: world.room.mute(heir, staff.id, "audio"),
        lambda: world.room.remove(heir, staff.id),
        lambda: world.room.end(heir),
    ):
        with pytest.raises(RoomError, match="may not"):
            attempt()


def test_identities_go_only_to_see_identities_and_never_under_sealed() -> None:
    world, chair, registrar, (a, _b, _c) = hearing()
    seen_by_registrar = world.room.view(a, registrar)
    assert seen_by_registrar["identity"] == {"name": "Resident Name 0", "email": "r0@example.jp"}
    for viewer in (chair, a):
        assert "identity" not in world.room.view(a, viewer)
    assert world.room.view(a, chair)["name"] == f"参加者 {a.pseudonym}"


def test_moderator_mute_holds_until_ask_unmute() -> None:
    world = World("bereavement")
    staff = world.join("staff", "職員")
    heir = world.join("heir", "heir")
    world.room.admit(staff, heir.id)
    world.room.published(heir, "audio", True)
    world.room.mute(staff, heir.id, "audio")
    assert world.hooks.gates[-1] == (heir.id, "audio", False)
    assert world.inbox[heir.id][-2] == {"type": "muted", "kind": "audio"}
    with pytest.raises(RoomError) as error:
        world.room.set_media(heir, {"audio": True})
    assert error.value.code == "muted_by_moderator"
    world.room.ask_unmute(staff, heir.id, "audio")
    assert world.of(heir, "unmute_requested")
    world.room.set_media(heir, {"audio": True})
    assert world.hooks.gates[-1] == (heir.id, "audio", True)


def test_removed_participants_cannot_come_back() -> None:
    world, chair, _, (a, _b, _c) = hearing()
    world.room.remove(chair, a.id)
    assert world.inbox[a.id][-1] == {"type": "removed"}
    with pytest.raises(RoomError) as error:
        world.room.check_entry(a.participant_id, a.role)
    assert error.value.code == "removed"


def test_a_locked_room_refuses_newcomers_but_not_staff() -> None:
    world, chair, _, _ = hearing()
    world.room.lock(chair, True)
    with pytest.raises(RoomError) as error:
        world.join("resident")
    assert error.value.code == "room_locked"
    world.join("staff", "職員")


def test_end_disconnects_everyone() -> None:
    world, chair, _, residents = hearing()
    world.room.end(chair)
    assert all(world.inbox[m.id][-1] == {"type": "ended"} for m in residents)
    assert world.room.ended and not world.room.members


def test_a_dropped_participant_keeps_their_hand_within_the_grace_period() -> None:
    world, _, _, (a, b, _c) = hearing()
    world.room.raise_hand(a)
    world.room.raise_hand(b)
    world.room.disconnected(a)
    assert world.of(b, "participant_updated")[-1]["participant"]["connected"] is False
    assert world.room.check_entry(a.participant_id, a.role) is a
    box: list[Message] = []
    joined = world.room.reconnect(a, box.append)
    assert joined["type"] == "joined" and joined["hands"] == [a.id, b.id]
    assert world.timers[-1].cancelled


def test_after_the_grace_period_the_participant_has_left() -> None:
    world, _, _, (a, b, _c) = hearing()
    world.room.raise_hand(a)
    world.room.disconnected(a)
    world.timers[-1].fire()
    assert a.id not in world.room.members
    assert world.of(b, "participant_left")[-1] == {
        "type": "participant_left",
        "id": a.id,
        "reason": "timeout",
    }
    assert world.room.hands == []


def test_chat_to_staff_reaches_staff_roles_and_the_sender_only() -> None:
    world, chair, registrar, (a, b, _c) = hearing()
    world.room.chat(a, "質問があります", "staff")
    assert world.of(chair, "chat") and world.of(registrar, "chat") and world.of(a, "chat")
    assert not world.of(b, "chat")
    assert ("chat", {"id": a.id, "to": "staff", "text": "質問があります"}) in world.hooks.events


def test_chat_has_a_length_limit() -> None:
    world, _, _, (a, _b, _c) = hearing()
    with pytest.raises(RoomError) as error:
        world.room.chat(a, "あ" * 2001, "all")
    assert error.value.code == "chat_too_long"


def test_leaving_while_holding_the_floor_ends_the_turn() -> None:
    world, chair, _, (a, _b, _c) = hearing()
    world.room.grant_floor(chair, a.id)
    world.room.leave(a)
    assert world.room.floor_holder is None
    assert world.of(chair, "floor")[-1]["reason"] == "left"


def test_under_sealed_anonymity_nobody_sees_an_identity_whatever_the_role() -> None:
    world, _chair, registrar, (a, _b, _c) = hearing()
    world.room.template = dataclasses.replace(world.room.template, anonymity="sealed")
    assert registrar.can(Permission.see_identities)
    assert "identity" not in world.room.view(a, registrar)
