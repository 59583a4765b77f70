"""Pure functions and small classes of the forwarding path."""

import struct

import pytest

from sfu.nack_tracker import NackTracker
from sfu.receive_stats import ReceiveStats
from sfu.rtp_packet_view import (
    RtpPacketView,
    extension_block,
    is_h264_keyframe_start,
    is_vp8_keyframe_start,
)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x10\x00", True),  # S=1, PID=0, no extension, P=0
        (b"\x10\x01", False),  # interframe
        (b"\x00\x00", False),  # not the start of a partition
        (b"\x90\x80\x81\x23\x00", True),  # X, I with 15-bit picture id
        (b"\x90\xe0\x12\x34\x56\x00", True),  # X, I (7 bit), L, T
        (b"\x90\x80", False),  # truncated
        (b"", False),
    ],
)
def test_vp8_keyframe_detection(payload: bytes, expected: bool) -> None:
    assert is_vp8_keyframe_start(payload) is expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x65\x88", True),  # IDR slice
        (b"\x67\x42", True),  # SPS
        (b"\x41\x9a", False),  # non-IDR slice
        (b"\x18\x00\x02\x67\x42\x00\x02\x68\xce", True),  # STAP-A with SPS
        (b"\x7c\x85\x00", True),  # FU-A start of IDR
        (b"\x7c\x05\x00", False),  # FU-A middle
        (b"\x18\x00\x02\x41\x9a", False),
    ],
)
def test_h264_keyframe_detection(payload: bytes, expected: bool) -> None:
    assert is_h264_keyframe_start(payload) is expected


def test_extension_block_is_padded_one_byte_header() -> None:
    view = RtpPacketView(1, 2, 0, b"x", 0, 0x123456, (True, 30), False)
    block = view.extensions((3, 2))
    assert block[:2] == b"\xbe\xde"
    assert struct.unpack("!H", block[2:4])[0] * 4 == len(block) - 4
    assert block[4:8] == b"\x32\x12\x34\x56"  # id 3, 3 bytes
    assert block[8:10] == b"\x20\x9e"  # id 2, vad + level 30
    assert view.extensions((0, 0)) == b"" == extension_block([])


def test_padding_only_packet_keeps_its_padding() -> None:
    view = RtpPacketView(1, 2, 0, b"", 4, 0, None, False)
    assert view.body() == b"\x00\x00\x00\x04"
    assert view.out((0, 0)) == (0x80 | 0x20, b"\x00\x00\x00\x04")  # P bit set


def test_a_copy_is_its_first_byte_and_extensions_then_payload() -> None:
    view = RtpPacketView(1, 2, 1, b"payload", 0, 0x123456, None, False)
    first, tail = view.out((3, 0))
    assert first == 0x90 and tail == view.extensions((3, 0)) + b"payload"  # X bit set
    assert view.out((0, 0)) == (0x80, b"payload")
    assert view.out((3, 0)) is view.out((3, 0))  # built once, shared by the consumers
    assert view.mbit == 0x80


def test_nack_tracker_reports_gaps_once_and_forgets_repairs() -> None:
    tracker = NackTracker()
    assert tracker.add(65534) == []
    assert tracker.add(2) == [65535, 0, 1]  # across the wrap
    assert tracker.add(3) == []
    tracker.add(0)  # a retransmission arrives
    assert tracker.missing == {65535, 1}
    assert tracker.add(1000) == []  # a jump this large is a restart, not loss
    assert tracker.missing == set()


def test_receive_stats_counts_loss_and_wraps() -> None:
    stats = ReceiveStats(90000)
    for i, seq in enumerate([65533, 65534, 1, 2]):
        stats.add(seq, i * 3000, 100, i / 30)
    assert stats.extended_max == (1 << 16) | 2
    assert stats.packets_lost == 2  # 65535 and 0
    assert stats.fraction_lost() == (2 << 8) // 6
    assert stats.fraction_lost() == 0
