"""Errors a method raises to answer a call with a specific failure, and that calls raise."""

from __future__ import annotations

from wit_world.imports import types as _types


class CallError(Exception):
    """A call failed; the subclass says how, ``message`` says why."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def to_wit(self) -> "_types.CallError":
        return _WIT[type(self)](self.message)

    @staticmethod
    def from_wit(error: "_types.CallError") -> "CallError":
        for cls, case in _WIT.items():
            if isinstance(error, case):
                return cls(error.value)
        return Failed(str(error))


class NotFound(CallError):
    """No such service, method or thing."""


class Denied(CallError):
    """The caller may not do this."""


class Unavailable(CallError):
    """The service cannot take the call now; retrying may help."""


class Timeout(CallError):
    """The call ran out of time."""


class BadRequest(CallError):
    """The request is malformed; the same request will fail again."""


class PaymentRequired(CallError):
    """The caller must pay or settle first."""


class Failed(CallError):
    """The service failed while handling the call."""


_WIT = {
    NotFound: _types.CallError_NotFound,
    Denied: _types.CallError_Denied,
    Unavailable: _types.CallError_Unavailable,
    Timeout: _types.CallError_Timeout,
    BadRequest: _types.CallError_BadRequest,
    PaymentRequired: _types.CallError_PaymentRequired,
    Failed: _types.CallError_Failed,
    CallError: _types.CallError_Failed,
}
