"""The one error the gateway's HTTP layer answers with: a status code and a message naming the problem and the fix.

Every refusal of the Mesh API is an :class:`ApiError`, answered as ``{"error": message}`` with its status by the
app's handler (``gateway/app.py``); nothing a caller sends can turn into a 500 with a traceback.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

__all__ = ["ApiError", "error_response"]


class ApiError(Exception):
    """A request the gateway refuses (4xx) or cannot serve right now (503), with the message the caller sees."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(error: ApiError) -> JSONResponse:
    """``{"error": message}`` with the error's status and headers."""
    return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)
