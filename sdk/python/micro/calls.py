"""Calls to other services, wherever they run and whatever language they are written in."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from componentize_py_types import Err
from wit_world.imports import transport as _transport
from wit_world.imports import types as _types

from .errors import CallError, Failed


def call_raw(
    service: str,
    method: str,
    payload: bytes,
    content_type: str = "application/json",
    metadata: Optional[Dict[str, str]] = None,
) -> _types.Response:
    """Calls ``method`` of ``service`` (``name`` or ``name@version``) with raw bytes."""
    request = _types.Request(
        service=service,
        method=method,
        payload=payload,
        content_type=content_type,
        metadata=list((metadata or {}).items()),
    )
    try:
        return _transport.call(request)
    except Err as e:
        raise CallError.from_wit(e.value) from None


def call(service: str, method: str, body: Any = None) -> Any:
    """Calls ``method`` of ``service`` with ``body`` as JSON and answers the JSON it returns.

    Raises a :class:`CallError` subclass (``NotFound``, ``Unavailable`` …) when the call fails.
    """
    payload = b"" if body is None else json.dumps(body).encode()
    response = call_raw(service, method, payload)
    if not response.payload:
        return None
    try:
        return json.loads(response.payload)
    except ValueError as e:
        raise Failed(f"{service}/{method} answered something that is not JSON: {e}") from None
