"""The service's own durable key-value store (one namespace per service, kept by the node)."""

from __future__ import annotations

import builtins
import json
from typing import Any, Optional, Tuple, Union

from componentize_py_types import Err
from wit_world.imports import storage as _storage


class StorageError(Exception):
    """The store refused (invalid key, value too large) or failed."""


def _bytes(value: Union[bytes, str]) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _wrap(op, *args):
    try:
        return op(*args)
    except Err as e:
        raise StorageError(getattr(e.value, "value", str(e.value))) from None


def get(key: str) -> Optional[bytes]:
    """The value of ``key``, or ``None``."""
    return _wrap(_storage.get, key)


def set(key: str, value: Union[bytes, str]) -> None:  # noqa: A001 - the WIT's name
    """Sets ``key``; durable when this returns."""
    _wrap(_storage.set, key, _bytes(value))


def delete(key: str) -> bool:
    """Deletes ``key``; answers whether it existed."""
    return _wrap(_storage.delete, key)


def list(  # noqa: A001 - the WIT's name
    prefix: str = "", start_after: Optional[str] = None, limit: int = 100
) -> Tuple[builtins.list, Optional[str]]:
    """Up to ``limit`` ``(key, value)`` pairs whose keys start with ``prefix``, after
    ``start_after``, in order; and the key to pass as ``start_after`` for the next page."""
    page = _wrap(_storage.list, prefix, start_after, limit)
    return builtins.list(page.entries), page.next


def compare_and_swap(key: str, expected: Optional[bytes], new: Optional[bytes]) -> bool:
    """Sets ``key`` to ``new`` (``None`` deletes) only if it holds ``expected`` (``None``:
    absent); answers whether it did."""
    return _wrap(_storage.compare_and_swap, key, expected, new)


def get_json(key: str, default: Any = None) -> Any:
    """The value of ``key`` as JSON, or ``default``."""
    value = get(key)
    return default if value is None else json.loads(value)


def set_json(key: str, value: Any) -> None:
    """Sets ``key`` to ``value`` as JSON."""
    set(key, json.dumps(value))
