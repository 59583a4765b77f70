"""Madoguchi's selective forwarding unit on aiortc (see sfu/README.md)."""

from .active_speaker_observer import ActiveSpeakerObserver
from .config import SfuConfig
from .consumer import Consumer
from .errors import (
    ClosedError,
    DuplicateError,
    GlareError,
    IncompatibleCodecError,
    NegotiationError,
    NoUsableCodecError,
    SfuError,
)
from .producer import Producer
from .router import Router
from .signal import Signal
from .speaking_event import SpeakingEvent
from .transport import Transport

__all__ = [
    "ActiveSpeakerObserver",
    "ClosedError",
    "Consumer",
    "DuplicateError",
    "GlareError",
    "IncompatibleCodecError",
    "NegotiationError",
    "NoUsableCodecError",
    "Producer",
    "Router",
    "SfuConfig",
    "SfuError",
    "Signal",
    "SpeakingEvent",
    "Transport",
]
