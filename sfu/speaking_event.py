"""What the active-speaker observer tells listeners when someone starts or stops speaking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .producer import Producer


@dataclass(frozen=True)
class SpeakingEvent:
    """An audio producer started (speaking=True) or stopped speaking."""

    producer: Producer
    speaking: bool
    # mean level over the last interval, in dBov (0 is loudest, -127 silence)
    level_dbov: float
