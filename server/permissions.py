"""Permissions a role may hold, and the named presets templates build roles from.

Deny by default: a participant may do exactly what their role's set contains, nothing else.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class Permission(enum.StrEnum):
    """One thing a participant may do in a consultation."""

    publish_audio = "publish_audio"
    publish_video = "publish_video"
    publish_screen = "publish_screen"
    subscribe = "subscribe"
    chat = "chat"
    raise_hand = "raise_hand"
    admit = "admit"  # let people in from the lobby
    grant_floor = "grant_floor"  # give and revoke the floor in raise-hand mode
    mute_others = "mute_others"
    remove = "remove"
    record = "record"
    see_identities = "see_identities"  # real names behind pseudonyms


P = Permission

# seeing identities is never part of `host`: it must be granted on purpose (the registrar)
_HOST = frozenset(Permission) - {P.see_identities}

PRESETS: Mapping[str, frozenset[Permission]] = MappingProxyType(
    {
        "host": _HOST,
        "registrar": _HOST | {P.see_identities},
        "present": frozenset(
            {P.publish_audio, P.publish_video, P.publish_screen, P.subscribe, P.chat}
        ),
        "participate": frozenset(
            {P.publish_audio, P.publish_video, P.subscribe, P.chat, P.raise_hand}
        ),
        "listen": frozenset({P.subscribe, P.chat, P.raise_hand}),
        "observe": frozenset({P.subscribe}),
    }
)
