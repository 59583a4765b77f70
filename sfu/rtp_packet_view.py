"""One incoming RTP packet, reduced to what forwarding needs, shared by all consumers."""

from __future__ import annotations

import struct

ONE_BYTE_PROFILE = b"\xbe\xde"


def _element(ext_id: int, value: bytes) -> bytes:
    return bytes([(ext_id << 4) | (len(value) - 1)]) + value


def extension_block(elements: list[bytes]) -> bytes:
    """RFC 8285 one-byte-header block, padded to 32 bits ('' if there is nothing)."""
    body = b"".join(elements)
    if not body:
        return b""
    body += b"\x00" * (-len(body) % 4)
    return ONE_BYTE_PROFILE + struct.pack("!H", len(body) // 4) + body


def is_vp8_keyframe_start(payload: bytes) -> bool:
    """True for the first packet of a VP8 keyframe (RFC 7741 descriptor, then P bit 0)."""
    if len(payload) < 1:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S bit set, partition index 0
        return False
    i = 1
    if first & 0x80:  # X: extension byte follows
        if len(payload) < 2:
            return False
        ext = payload[1]
        i = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= i:
                return False
            i += 2 if payload[i] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            i += 1
        if ext & 0x30:  # T or K: TID/KEYIDX
            i += 1
    return len(payload) > i and not payload[i] & 0x01


def is_h264_keyframe_start(payload: bytes) -> bool:
    """True for a packet that starts an IDR picture or carries an SPS (RFC 6184)."""
    if len(payload) < 2:
        return False
    nal = payload[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A: walk the aggregated NAL units
        i = 1
        while i + 2 < len(payload):
            size = (payload[i] << 8) | payload[i + 1]
            if payload[i + 2] & 0x1F in (5, 7):
                return True
            i += 2 + size
        return False
    if nal == 28:  # FU-A: start bit and the fragmented unit's type
        return bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
    return False


class RtpPacketView:
    """The fields forwarding rewrites or copies, and per-layout header-extension blocks."""

    __slots__ = (
        "_blocks",
        "_out",
        "abs_send_time",
        "audio_level",
        "keyframe",
        "marker",
        "mbit",
        "padding",
        "payload",
        "sequence_number",
        "timestamp",
    )

    def __init__(
        self,
        sequence_number: int,
        timestamp: int,
        marker: int,
        payload: bytes,
        padding: int,
        abs_send_time: int,
        audio_level: tuple[bool, int] | None,
        keyframe: bool,
    ) -> None:
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.marker = marker
        self.payload = payload
        self.padding = padding
        self.abs_send_time = abs_send_time
        self.audio_level = audio_level
        self.keyframe = keyframe
        self.mbit = marker << 7  # the marker bit in place in the header's second byte
        self._blocks: dict[tuple[int, int], bytes] = {}
        self._out: dict[tuple[int, int], tuple[int, bytes]] = {}

    def out(self, layout: tuple[int, int]) -> tuple[int, bytes]:
        """(first header byte, extensions + payload) of the copies sent with this layout.

        Built once per layout and shared by every consumer using it: a copy then costs one
        header and one buffer write (see consumer.forward_group).
        """
        found = self._out.get(layout)
        if found is None:
            ext = self.extensions(layout)
            first = 0x90 if ext else 0x80
            if not self.payload and self.padding:
                first |= 0x20  # padding only (a bandwidth probe): the padding goes along
            found = self._out[layout] = (first, ext + self.body())
        return found

    def extensions(self, layout: tuple[int, int]) -> bytes:
        """Header extensions for a consumer whose (abs-send-time, audio-level) ids are layout."""
        block = self._blocks.get(layout)
        if block is None:
            block = self._build(layout)
            self._blocks[layout] = block
        return block

    def _build(self, layout: tuple[int, int]) -> bytes:
        abs_id, level_id = layout
        elements = []
        if abs_id:
            elements.append(_element(abs_id, struct.pack("!I", self.abs_send_time)[1:]))
        if level_id and self.audio_level is not None:
            vad, level = self.audio_level
            elements.append(_element(level_id, bytes([(0x80 if vad else 0) | (level & 0x7F)])))
        return extension_block(elements)

    def body(self) -> bytes:
        """The payload, with padding re-added for padding-only packets (bandwidth probes)."""
        if self.payload or not self.padding:
            return self.payload
        return b"\x00" * (self.padding - 1) + bytes([self.padding])
