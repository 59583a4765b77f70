"""User-facing errors of the server, turned into JSON responses in one place."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error a client can act on: an HTTP status, a stable code and a human message."""

    def __init__(
        self, status: int, code: str, message: str, *, field: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        """The body of the error response: {"error": {"code", "message", "field"?}}."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return {"error": body}


def bad_request(message: str, field: str | None = None) -> ApiError:
    """A request body or parameter is invalid."""
    return ApiError(400, "invalid", message, field=field)


def not_found(what: str) -> ApiError:
    """A named resource does not exist (or is not visible to the caller)."""
    return ApiError(404, "not_found", f"{what} not found")
