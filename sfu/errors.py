"""Exceptions raised by the SFU; all derive from SfuError."""


class SfuError(Exception):
    """Base class of every error the SFU raises on purpose."""


class ClosedError(SfuError):
    """The router, transport, producer or consumer is already closed."""


class DuplicateError(SfuError):
    """The peer id already has a transport on this router."""


class GlareError(SfuError):
    """A client offer arrived while the SFU's own offer is outstanding."""


class NoUsableCodecError(SfuError):
    """A sending m-line of the client's offer has no VP8, H.264 or Opus codec."""


class IncompatibleCodecError(SfuError):
    """The receiving client cannot take the producer's codec."""


class NegotiationError(SfuError):
    """The SDP is malformed or arrives in the wrong signaling state."""
