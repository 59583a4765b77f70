"""Header-extension ids in the SFU's offers follow the ones the client already uses.

Under BUNDLE one id means one extension for the whole session. aiortc's createOffer always
writes its own fixed ids (1 = mid, 2 = audio level, 3 = abs-send-time), while a browser's offer
picks others (Chromium: 1 = audio level, 4 = mid, ...). Chromium refuses an offer that gives an id
it uses a second meaning ("RTP extension ID reassignment not supported"), so every SFU offer is
rewritten to the client's ids, and extensions the client never named get ids it does not use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# a=extmap:<id>[/<direction>] <uri> [<attributes>]
EXTMAP = re.compile(r"^a=extmap:(\d+)(/[a-z]+)? (\S+)(.*)$")
# one-byte header extensions: ids 1-14
ONE_BYTE_IDS = range(1, 15)


def ids_in(sdp: str) -> dict[str, int]:
    """The extension ids a description uses, by URI."""
    found: dict[str, int] = {}
    for line in sdp.splitlines():
        match = EXTMAP.match(line)
        if match:
            found.setdefault(match.group(3), int(match.group(1)))
    return found


def remap(sdp: str, known: Mapping[str, int]) -> tuple[str, dict[str, int]]:
    """The description with each extension at its known id; returns the ids it chose."""
    chosen = dict(known)
    taken = set(chosen.values())

    def id_for(uri: str, proposed: int) -> int:
        if uri not in chosen:
            free = proposed if proposed not in taken else min(set(ONE_BYTE_IDS) - taken)
            chosen[uri] = free
            taken.add(free)
        return chosen[uri]

    lines = []
    for line in sdp.split("\r\n"):
        match = EXTMAP.match(line)
        if match:
            new_id = id_for(match.group(3), int(match.group(1)))
            line = f"a=extmap:{new_id}{match.group(2) or ''} {match.group(3)}{match.group(4)}"
        lines.append(line)
    return "\r\n".join(lines), chosen
