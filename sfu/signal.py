"""A tiny synchronous event: the SFU's way to tell the signaling server what happened."""

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)


class Signal(Generic[T]):
    """Callbacks connected to one kind of event, called in order when it is emitted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[[T], None]] = []

    def connect(self, callback: Callable[[T], None]) -> Callable[[T], None]:
        """Call `callback(value)` on every emit; returns it, so it can decorate."""
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[[T], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, value: T) -> None:
        # one failing listener must neither stop the others nor the media
        for callback in list(self._callbacks):
            try:
                callback(value)
            except Exception:
                logger.exception("listener of %s failed", self.name)

    def clear(self) -> None:
        self._callbacks.clear()
