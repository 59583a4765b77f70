"""A live consultation's room: members, lobby, hand queue, floor, moderation, chat, presence.

Pure logic, no network: the signaling server feeds it what participants ask for and gives it
hooks for what must happen outside (pause a producer at the SFU, write the event log, close a
connection). Every refusal is a `RoomError` with a protocol error code (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.permissions import Permission
from server.templates import Role, Template

P = Permission
Message = dict[str, Any]
KINDS = ("audio", "video", "screen")
PUBLISH = {"audio": P.publish_audio, "video": P.publish_video, "screen": P.publish_screen}
CHAT_MAX = 2000
RECONNECT_GRACE = 30.0  # seconds a dropped participant keeps their place


class RoomError(Exception):
    """A participant's request was refused; `code` is the protocol error code."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def forbidden(permission: Permission) -> RoomError:
    """The actor's role lacks `permission`."""
    return RoomError(
        "forbidden", f"your role may not {permission.value}", permission=permission.value
    )


class Cancellable(Protocol):
    """A scheduled callback (asyncio.TimerHandle)."""

    def cancel(self) -> None: ...


class RoomHooks(Protocol):
    """What the room needs done outside itself."""

    def media_gate(self, member: Member, kind: str, open_: bool) -> None:
        """Resume (open) or pause the member's producer of `kind` at the SFU."""

    def log(self, kind: str, member: Member | None, data: dict[str, Any]) -> None:
        """Append to the consultation's event log."""

    def close_member(self, member: Member, reason: str) -> None:
        """Close the member's connection: denied, removed, left, timeout or ended."""


Schedule = Callable[[float, Callable[[], None]], Cancellable]


def _loop_schedule(delay: float, callback: Callable[[], None]) -> Cancellable:
    return asyncio.get_running_loop().call_later(delay, callback)


@dataclass
class Member:
    """One participant in the live room (admitted or waiting in the lobby)."""

    participant_id: int
    role: Role
    name: str  # display name, or the pseudonym of an anonymous participant
    pseudonym: int | None = None
    # (name, email) behind a pseudonym; only kept when the template lets anyone see it
    identity: tuple[str, str] | None = None
    send: Callable[[Message], None] | None = None  # None while disconnected
    id: str = field(default_factory=lambda: "m-" + secrets.token_hex(5))
    resume_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admitted: bool = False
    connected: bool = True
    published: set[str] = field(default_factory=set)  # kinds with a producer at the SFU
    enabled: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(KINDS, True))
    moderator_muted: set[str] = field(default_factory=set)
    gates: dict[str, bool] = field(default_factory=dict)  # last state given to media_gate
    speaking: bool = False
    expiry: Cancellable | None = None

    def can(self, permission: Permission) -> bool:
        """Whether this member's role grants `permission`."""
        return self.role.can(permission)

    def deliver(self, message: Message) -> None:
        """Send to this member if connected."""
        if self.send is not None:
            self.send(message)


class Room:
    """One live consultation; the signaling server has one per consultation in progress."""

    def __init__(
        self,
        template: Template,
        consultation: dict[str, Any],
        hooks: RoomHooks,
        schedule: Schedule = _loop_schedule,
        clock: Callable[[], float] = time.time,
        grace: float = RECONNECT_GRACE,
        ice_servers: Callable[[], list[dict[str, Any]]] = list,
    ) -> None:
        self.template = template
        self.consultation = consultation  # {"id", "title"}: public facts only
        self.hooks = hooks
        self.schedule = schedule
        self.clock = clock
        self.grace = grace
        self.ice_servers = ice_servers  # for RTCPeerConnection, fresh TURN credentials each time
        self.members: dict[str, Member] = {}
        self.by_participant: dict[int, Member] = {}
        self.hands: list[str] = []
        self.floor_holder: str | None = None
        self.floor_ends_at: float | None = None
        self._turn: Cancellable | None = None
        self.locked = False
        self.ended = False
        self.removed: set[int] = set()

    # -- views --------------------------------------------------------------------------------

    @property
    def raise_hand_mode(self) -> bool:
        """Whether the floor is controlled (raise hand) rather than open."""
        return self.template.floor.mode == "raise_hand"

    def admitted(self) -> list[Member]:
        """Members in the room (not in the lobby), in order of arrival."""
        return [m for m in self.members.values() if m.admitted]

    def lobby(self) -> list[Member]:
        """Members waiting in the lobby, in order of arrival."""
        return [m for m in self.members.values() if not m.admitted]

    def gated(self, member: Member) -> bool:
        """Whether the member's microphone and camera need the floor."""
        role = member.role
        return self.raise_hand_mode and role.can(P.raise_hand) and not role.can(P.grant_floor)

    def gate_open(self, member: Member, kind: str) -> bool:
        """Whether the member's producer of `kind` may reach the others now."""
        if not member.admitted or not member.enabled[kind] or kind in member.moderator_muted:
            return False
        if kind != "screen" and self.gated(member):
            return self.floor_holder == member.id
        return member.can(PUBLISH[kind])

    def view(self, member: Member, viewer: Member) -> Message:
        """What `viewer` may see of `member`: never a name or email behind a pseudonym."""
        role = member.role
        shown: Message = {
            "id": member.id,
            "role": role.name,
            "role_label": {"ja": role.label.ja, "en": role.label.en},
            "name": member.name,
            "pseudonym": member.pseudonym,
            "muted": "audio" in member.moderator_muted,
            "speaking": member.speaking,
            "hand": self.hands.index(member.id) + 1 if member.id in self.hands else None,
            "floor": self.floor_holder == member.id,
            "connected": member.connected,
        }
        for kind in KINDS:
            shown[kind] = kind in member.published and self.gate_open(member, kind)
        if self._may_see_identity(viewer) and member.identity is not None:
            shown["identity"] = {"name": member.identity[0], "email": member.identity[1]}
        return shown

    def _may_see_identity(self, viewer: Member) -> bool:
        return self.template.anonymity == "pseudonym" and viewer.can(P.see_identities)

    def floor_message(self, reason: str | None = None) -> Message:
        """The floor state as sent to everyone."""
        ends = self.floor_ends_at
        message: Message = {
            "type": "floor",
            "holder": self.floor_holder,
            "ends_at": None if ends is None else int(ends * 1000),
            "turn_seconds": self.template.floor.turn_seconds,
        }
        if reason is not None:
            message["reason"] = reason
        return message

    def joined_message(self, member: Member) -> Message:
        """The `joined` message for a member who has just been let in."""
        role = member.role
        message: Message = {
            "type": "joined",
            "you": {
                "id": member.id,
                "role": role.name,
                "role_label": {"ja": role.label.ja, "en": role.label.en},
                "name": member.name,
                "pseudonym": member.pseudonym,
                "permissions": sorted(p.value for p in role.permissions),
            },
            "resume_token": member.resume_token,
            "consultation": {
                **self.consultation,
                "template": self.template.name,
                "anonymity": self.template.anonymity,
                "floor_mode": self.template.floor.mode,
                "turn_seconds": self.template.floor.turn_seconds,
                "locked": self.locked,
            },
            "participants": [self.view(m, member) for m in self.admitted()],
            "hands": list(self.hands),
            "floor": {k: v for k, v in self.floor_message().items() if k != "type"},
            "ice_servers": self.ice_servers(),
            "server_time": int(self.clock() * 1000),
        }
        if member.can(P.admit):
            message["lobby"] = [self.view(m, member) for m in self.lobby()]
        return message

    def lobby_message(self, member: Member) -> Message:
        """The `lobby` message for a member who waits to be admitted."""
        role = member.role
        return {
            "type": "lobby",
            "resume_token": member.resume_token,
            "consultation": dict(self.consultation),
            "you": {
                "name": member.name,
                "role": role.name,
                "role_label": {"ja": role.label.ja, "en": role.label.en},
            },
        }

    # -- delivery -----------------------------------------------------------------------------

    def broadcast(self, message: Message, *, exclude: Member | None = None) -> None:
        """Send the same message to every admitted member."""
        for member in self.admitted():
            if member is not exclude:
                member.deliver(message)

    def _presence(self, kind: str, member: Member) -> None:
        for viewer in self.admitted():
            viewer.deliver({"type": kind, "participant": self.view(member, viewer)})

    def _updated(self, member: Member) -> None:
        if member.admitted:
            self._presence("participant_updated", member)

    def _lobby_changed(self) -> None:
        for viewer in self.admitted():
            if viewer.can(P.admit):
                lobby = [self.view(m, viewer) for m in self.lobby()]
                viewer.deliver({"type": "lobby_changed", "lobby": lobby})

    def _hands_changed(self) -> None:
        self.broadcast({"type": "hands", "queue": list(self.hands)})

    def _sync_media(self, member: Member) -> None:
        # tell the SFU only about changes, and only for kinds that have a producer
        for kind in KINDS:
            if kind not in member.published:
                continue
            is_open = self.gate_open(member, kind)
            if member.gates.get(kind) != is_open:
                member.gates[kind] = is_open
                self.hooks.media_gate(member, kind, is_open)

    # -- lookups ------------------------------------------------------------------------------

    def member(self, member_id: object) -> Member:
        """The member with this id, or not_found."""
        found = self.members.get(member_id) if isinstance(member_id, str) else None
        if found is None:
            raise RoomError("not_found", "no such participant", field="id")
        return found

    def _admitted_member(self, member_id: object) -> Member:
        found = self.member(member_id)
        if not found.admitted:
            raise RoomError("not_found", "no such participant in the room", field="id")
        return found

    @staticmethod
    def _require(actor: Member, permission: Permission) -> None:
        if not actor.can(permission):
            raise forbidden(permission)

    def _require_floor_control(self) -> None:
        if not self.raise_hand_mode:
            raise RoomError("no_floor_control", "this consultation has no raise-hand floor")

    # -- joining and leaving ------------------------------------------------------------------

    def check_entry(self, participant_id: int, role: Role) -> Member | None:
        """The member to reconnect, or None for a newcomer; refuses closed rooms."""
        if self.ended:
            raise RoomError("consultation_closed", "the consultation has ended")
        if participant_id in self.removed:
            raise RoomError("removed", "you were removed from this consultation", fatal=True)
        existing = self.by_participant.get(participant_id)
        if existing is not None:
            return existing
        if self.locked and not role.can(P.admit):
            raise RoomError("room_locked", "the consultation is locked")
        return None

    def enter(self, member: Member) -> Message:
        """A newcomer arrives: into the lobby if their role waits there, else into the room."""
        self.check_entry(member.participant_id, member.role)
        self.members[member.id] = member
        self.by_participant[member.participant_id] = member
        if member.role.lobby:
            self.hooks.log("lobby_entered", member, {"id": member.id})
            self._lobby_changed()
            return self.lobby_message(member)
        return self._let_in(member)

    def _let_in(self, member: Member) -> Message:
        member.admitted = True
        self.hooks.log("joined", member, {"id": member.id, "role": member.role.name})
        for viewer in self.admitted():
            if viewer is not member:
                viewer.deliver(
                    {"type": "participant_joined", "participant": self.view(member, viewer)}
                )
        return self.joined_message(member)

    def reconnect(self, member: Member, send: Callable[[Message], None]) -> Message:
        """A known member comes back (within the grace period) on a new connection."""
        if member.expiry is not None:
            member.expiry.cancel()
            member.expiry = None
        member.send = send
        member.connected = True
        self.hooks.log("reconnected", member, {"id": member.id})
        if not member.admitted:
            return self.lobby_message(member)
        self._updated(member)
        return self.joined_message(member)

    def disconnected(self, member: Member) -> None:
        """The member's connection dropped: keep their place for the grace period."""
        if self.members.get(member.id) is not member:
            return
        member.send = None
        member.connected = False
        member.published.clear()
        member.gates.clear()
        member.speaking = False
        self.hooks.log("disconnected", member, {"id": member.id})
        self._updated(member)
        member.expiry = self.schedule(self.grace, lambda: self.leave(member, "timeout"))

    def leave(self, member: Member, reason: str = "left") -> None:
        """The member is gone for good: hand, floor and place are given up."""
        if self.members.get(member.id) is not member:
            return
        if member.expiry is not None:
            member.expiry.cancel()
            member.expiry = None
        was_admitted = member.admitted
        del self.members[member.id]
        self.by_participant.pop(member.participant_id, None)
        if member.id in self.hands:
            self.hands.remove(member.id)
            self._hands_changed()
        if self.floor_holder == member.id:
            self._end_turn("left")
        self.hooks.log("left", member, {"id": member.id, "reason": reason})
        if was_admitted:
            self.broadcast({"type": "participant_left", "id": member.id, "reason": reason})
        else:
            self._lobby_changed()
        self.hooks.close_member(member, reason)
        member.send = None

    # -- lobby --------------------------------------------------------------------------------

    def admit(self, actor: Member, member_id: object) -> None:
        """Let a waiting participant in."""
        self._require(actor, P.admit)
        member = self.member(member_id)
        if member.admitted:
            raise RoomError("not_in_lobby", "that participant is not waiting", field="id")
        self.hooks.log("admitted", member, {"id": member.id, "by": actor.id})
        member.deliver(self._let_in(member))
        self._lobby_changed()
        self._sync_media(member)

    def deny(self, actor: Member, member_id: object) -> None:
        """Turn a waiting participant away."""
        self._require(actor, P.admit)
        member = self.member(member_id)
        if member.admitted:
            raise RoomError("not_in_lobby", "that participant is not waiting", field="id")
        self.hooks.log("denied", member, {"id": member.id, "by": actor.id})
        member.deliver({"type": "denied"})
        self.leave(member, "denied")

    # -- raise hand and floor -----------------------------------------------------------------

    def raise_hand(self, actor: Member) -> None:
        """Join the end of the hand queue."""
        self._require_floor_control()
        self._require(actor, P.raise_hand)
        if actor.id in self.hands or self.floor_holder == actor.id:
            return
        self.hands.append(actor.id)
        self.hooks.log("hand_raised", actor, {"id": actor.id, "position": len(self.hands)})
        self._hands_changed()
        self._updated(actor)

    def lower_hand(self, actor: Member, member_id: object = None) -> None:
        """Leave the hand queue (or, with grant_floor, take someone else out of it)."""
        self._require_floor_control()
        if member_id is not None and member_id != actor.id:
            self._require(actor, P.grant_floor)
        target = actor if member_id is None else self.member(member_id)
        if target.id not in self.hands:
            return
        self.hands.remove(target.id)
        self.hooks.log("hand_lowered", target, {"id": target.id, "by": actor.id})
        self._hands_changed()
        self._updated(target)

    def grant_floor(self, actor: Member, member_id: object = None) -> None:
        """Give the floor to a chosen participant, or to the first in the hand queue."""
        self._require_floor_control()
        self._require(actor, P.grant_floor)
        if member_id is None:
            if not self.hands:
                raise RoomError("queue_empty", "nobody has raised a hand")
            member_id = self.hands[0]
        target = self._admitted_member(member_id)
        previous = self._take_floor()
        if target.id in self.hands:
            self.hands.remove(target.id)
            self._hands_changed()
        self.floor_holder = target.id
        turn = self.template.floor.turn_seconds
        if turn is not None:
            self.floor_ends_at = self.clock() + turn
            self._turn = self.schedule(turn, lambda: self._end_turn("time_up"))
        self.hooks.log(
            "floor_granted", target, {"id": target.id, "by": actor.id, "turn_seconds": turn}
        )
        self.broadcast(self.floor_message("granted"))
        if previous is not None:
            self._floor_moved(previous)
        self._floor_moved(target)

    def revoke_floor(self, actor: Member) -> None:
        """Take the floor back (grant_floor roles, or the holder giving it up)."""
        self._require_floor_control()
        if self.floor_holder != actor.id:
            self._require(actor, P.grant_floor)
        if self.floor_holder is None:
            return
        self._end_turn("revoked", by=actor)

    def _take_floor(self) -> Member | None:
        if self._turn is not None:
            self._turn.cancel()
            self._turn = None
        previous = self.members.get(self.floor_holder or "")
        self.floor_holder = None
        self.floor_ends_at = None
        return previous

    def _end_turn(self, reason: str, by: Member | None = None) -> None:
        holder_id = self.floor_holder
        previous = self._take_floor()
        if holder_id is None:
            return
        data: dict[str, Any] = {"id": holder_id, "reason": reason}
        if by is not None:
            data["by"] = by.id
        self.hooks.log("floor_ended", previous, data)
        self.broadcast(self.floor_message(reason))
        if previous is not None:
            self._floor_moved(previous)

    def _floor_moved(self, member: Member) -> None:
        self._sync_media(member)
        self._updated(member)

    # -- media --------------------------------------------------------------------------------

    def published(self, member: Member, kind: str, present: bool) -> None:
        """A producer of `kind` appeared (True) or went away (False) at the SFU."""
        if present:
            member.published.add(kind)
        else:
            member.published.discard(kind)
            member.gates.pop(kind, None)
        self._sync_media(member)
        self._updated(member)

    def set_media(self, actor: Member, changes: dict[str, bool]) -> None:
        """The member turns their own microphone, camera or screen on or off."""
        for kind, on in changes.items():
            if on and not actor.can(PUBLISH[kind]):
                raise forbidden(PUBLISH[kind])
            if on and kind in actor.moderator_muted:
                raise RoomError("muted_by_moderator", f"a moderator muted your {kind}")
        for kind, on in changes.items():
            actor.enabled[kind] = on
        self.hooks.log("media", actor, {"id": actor.id, **changes})
        self._sync_media(actor)
        self._updated(actor)

    def set_speaking(self, member: Member | None) -> None:
        """The active-speaker observer named a new dominant speaker (or none)."""
        for other in self.admitted():
            if other.speaking and other is not member:
                other.speaking = False
                self._updated(other)
        if member is not None and member.admitted and not member.speaking:
            member.speaking = True
            self._updated(member)
        self.broadcast({"type": "speaking", "id": None if member is None else member.id})

    # -- moderation ---------------------------------------------------------------------------

    def mute(self, actor: Member, member_id: object, kind: str) -> None:
        """Pause another participant's producer; they cannot undo it until asked."""
        self._require(actor, P.mute_others)
        target = self._admitted_member(member_id)
        target.moderator_muted.add(kind)
        target.enabled[kind] = False
        self.hooks.log("muted", target, {"id": target.id, "kind": kind, "by": actor.id})
        target.deliver({"type": "muted", "kind": kind})
        self._sync_media(target)
        self._updated(target)

    def ask_unmute(self, actor: Member, member_id: object, kind: str) -> None:
        """Lift a moderator mute and ask the participant to turn `kind` back on."""
        self._require(actor, P.mute_others)
        target = self._admitted_member(member_id)
        target.moderator_muted.discard(kind)
        self.hooks.log("unmute_requested", target, {"id": target.id, "kind": kind, "by": actor.id})
        target.deliver({"type": "unmute_requested", "kind": kind})
        self._updated(target)

    def remove(self, actor: Member, member_id: object) -> None:
        """Disconnect a participant; they cannot come back while the room lives."""
        self._require(actor, P.remove)
        target = self.member(member_id)
        if target is actor:
            raise RoomError("bad_field", "you cannot remove yourself; send leave", field="id")
        self.removed.add(target.participant_id)
        self.hooks.log("removed", target, {"id": target.id, "by": actor.id})
        target.deliver({"type": "removed"})
        self.leave(target, "removed")

    def lock(self, actor: Member, locked: bool) -> None:
        """Lock or unlock the consultation against newcomers."""
        self._require(actor, P.admit)
        self.locked = locked
        self.hooks.log("locked" if locked else "unlocked", actor, {"by": actor.id})
        self.broadcast({"type": "locked", "locked": locked})

    def end(self, actor: Member) -> None:
        """End the consultation for everyone."""
        self._require(actor, P.remove)
        self.close("ended", by=actor)

    def close(self, reason: str = "ended", by: Member | None = None) -> None:
        """End the room: everyone gets `ended` and is disconnected (idempotent)."""
        if self.ended:
            return
        self.ended = True
        self._take_floor()
        kind = "ended" if reason == "ended" else "closed"  # closed: empty, or shutdown
        self.hooks.log(kind, by, {"by": None if by is None else by.id, "reason": reason})
        for member in list(self.members.values()):
            if member.expiry is not None:
                member.expiry.cancel()
            member.deliver({"type": "ended"})
            self.hooks.close_member(member, "ended")
            member.send = None
        self.members.clear()
        self.by_participant.clear()
        self.hands.clear()

    # -- chat ---------------------------------------------------------------------------------

    def chat(self, actor: Member, text: str, to: str) -> Message:
        """Send a chat line to everyone or privately to staff; returns what was sent."""
        self._require(actor, P.chat)
        text = text.strip()
        if not text:
            raise RoomError("bad_field", "text must not be empty", field="text")
        if len(text) > CHAT_MAX:
            raise RoomError("chat_too_long", f"chat messages are at most {CHAT_MAX} characters")
        message: Message = {
            "type": "chat",
            "from": actor.id,
            "name": actor.name,
            "role": actor.role.name,
            "to": to,
            "text": text,
            "at": int(self.clock() * 1000),
        }
        self.hooks.log("chat", actor, {"id": actor.id, "to": to, "text": text})
        for member in self.admitted():
            if to == "all" or member is actor or self.is_staff(member):
                member.deliver(message)
        return message

    @staticmethod
    def is_staff(member: Member) -> bool:
        """Who private questions go to: staff roles, and whoever runs the room (chair)."""
        role = member.role
        return "staff" in role.join or role.can(P.admit) or role.can(P.grant_floor)
