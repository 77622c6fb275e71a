"""micro: write services for the micro network in Python.

A service is a module (``app.py``) with functions marked ``@micro.method`` (calls, JSON in and
out) and ``@micro.subscribe(topic)`` (messages), ending with::

    from micro import Handler, Subscriber

which hands them to the node. The node builds the module with componentize-py against the
``micro:network`` WIT package; this package is a thin layer over the bindings it generates
(``wit_world``), so everything the WIT offers is also reachable directly.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from componentize_py_types import Err
from wit_world.exports import handler as _handler
from wit_world.imports import broker as _broker
from wit_world.imports import types as _types

from . import log, storage
from .errors import (
    BadRequest,
    CallError,
    Denied,
    Failed,
    NotFound,
    PaymentRequired,
    Timeout,
    Unavailable,
)
from .calls import call, call_raw
from .events import Message, publish, publish_raw

__all__ = [
    "BadRequest",
    "CallError",
    "Context",
    "Denied",
    "Failed",
    "Handler",
    "Message",
    "NotFound",
    "PaymentRequired",
    "Subscriber",
    "Timeout",
    "Unavailable",
    "call",
    "call_raw",
    "log",
    "method",
    "publish",
    "publish_raw",
    "storage",
    "subscribe",
]


@dataclass
class Context:
    """Who called and how: passed to every method that takes two arguments."""

    method: str
    payload: bytes
    content_type: str
    caller_service: Optional[str]
    caller_node: str
    depth: int
    metadata: Dict[str, str] = field(default_factory=dict)


_methods: Dict[str, "_Method"] = {}
_subscriptions: List[tuple] = []


def method(fn: Optional[Callable] = None, *, name: Optional[str] = None):
    """Marks a function as a method of the service, callable as ``/<service>/<name>``.

    The function takes the request body, or a :class:`Context` and the body. The body is the
    request's JSON, turned into the type the parameter is annotated with when that is a
    dataclass; the answer (a dict, list, str, number, dataclass or ``None``) is sent as JSON,
    ``bytes`` as they are.
    """

    def register(fn: Callable) -> Callable:
        key = name or fn.__name__.replace("_", "-")
        if key in _methods:
            raise ValueError(f"method {key!r} is defined twice")
        _methods[key] = _Method(fn)
        return fn

    return register(fn) if fn is not None else register


def subscribe(topic: str, *, queue_group: Optional[str] = None, history: bool = False):
    """Marks a function as the receiver of the messages of ``topic``.

    Members of one ``queue_group`` share the messages; ``history`` replays the topic's retained
    messages when the service starts. The function takes a :class:`Message`; what it raises is
    logged by the node and the message is not redelivered.
    """

    def register(fn: Callable[[Message], Any]) -> Callable[[Message], Any]:
        _subscriptions.append((topic, queue_group, history, fn))
        return fn

    return register


_UNRESOLVED = object()


class _Method:
    """A method and what its signature says, worked out when it is registered: the module is
    imported once, when the component is made, so this is not repeated on every call."""

    def __init__(self, fn: Callable) -> None:
        import inspect

        self.fn = fn
        try:
            params = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            params = []
        self.wants_context = len(params) >= 2
        self._body_param = params[-1].name if params else None
        self._body = self._annotation()

    def _annotation(self) -> Any:
        if self._body_param is None:
            return None
        try:
            return typing.get_type_hints(self.fn).get(self._body_param)
        except NameError:
            # Annotated with a class defined further down: look again when called.
            return _UNRESOLVED
        except Exception:
            return None

    @property
    def body(self) -> Any:
        """The annotation of the body parameter (the last), or None."""
        if self._body is _UNRESOLVED:
            found = self._annotation()
            return None if found is _UNRESOLVED else found
        return self._body


def _decode(request: _types.Request, wanted: Any) -> Any:
    if wanted in (bytes, bytearray):
        return request.payload
    # JSON whatever the content type says: `curl -d` sends form-encoded headers with JSON bodies.
    if not request.payload:
        body: Any = None
    else:
        try:
            body = json.loads(request.payload)
        except ValueError as e:
            raise BadRequest(f"the body is not JSON: {e}") from None
    if wanted is not None and dataclasses.is_dataclass(wanted):
        if body is None:
            body = {}
        return _dataclass(wanted, body, "")
    return body


_JSON_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "an array", dict: "an object"}


def _type_name(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return f"an object ({tp.__name__})"
    return _JSON_NAMES.get(typing.get_origin(tp) or tp, getattr(tp, "__name__", str(tp)))


def _dataclass(cls: Any, value: Any, where: str) -> Any:
    """Builds ``cls`` from a JSON object, checking each field against its annotation, so a
    caller's mistake is a 400 that names the field, never a Python error from inside."""
    what = where or cls.__name__
    if not isinstance(value, dict):
        raise BadRequest(f"{what}: expected a JSON object, got {_json_kind(value)}")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise BadRequest(
            f"{what} has no field {', '.join(map(repr, unknown))} (fields: {', '.join(fields) or 'none'})"
        )
    args = {}
    for name, f in fields.items():
        path = f"{where}.{name}" if where else name
        tp = hints.get(name, Any)
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                if _optional(tp):
                    args[name] = None
                    continue
                raise BadRequest(f"missing field {path!r} ({_type_name(tp)})")
            continue
        args[name] = _convert(value[name], tp, path)
    return cls(**args)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _optional(tp: Any) -> bool:
    return _is_union(tp) and type(None) in typing.get_args(tp)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    for tp, name in ((str, "a string"), (int, "an integer"), (float, "a number"),
                     (list, "an array"), (dict, "an object")):
        if isinstance(value, tp):
            return name
    return type(value).__name__


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Checks (and for nested dataclasses builds) one JSON value against an annotation."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if _is_union(tp):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(value, options[0], path)
        for option in options:
            try:
                return _convert(value, option, path)
            except BadRequest:
                pass
        names = " or ".join(_type_name(a) for a in args if a is not type(None))
        raise BadRequest(f"field {path!r}: expected {names}, got {_json_kind(value)}")
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, path)
    base = origin or tp
    ok = {
        str: lambda v: isinstance(v, str),
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        list: lambda v: isinstance(v, list),
        dict: lambda v: isinstance(v, dict),
    }.get(base)
    if ok is None:
        return value  # an annotation JSON cannot express (a custom class): passed as it is
    if not ok(value):
        raise BadRequest(f"field {path!r}: expected {_type_name(tp)}, got {_json_kind(value)}")
    if base is float:
        return float(value)
    if base is list and args:
        return [_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if base is dict and len(args) == 2:
        return {k: _convert(v, args[1], f"{path}.{k}") for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode(name: str, value: Any) -> _types.Response:
    if isinstance(value, (bytes, bytearray)):
        return _types.Response(bytes(value), "application/octet-stream", [])
    try:
        text = json.dumps(_plain(value) if dataclasses.is_dataclass(value) else value, default=_plain)
    except (TypeError, ValueError) as e:
        raise Failed(f"the answer of {name} cannot be sent as JSON: {e}") from None
    return _types.Response(text.encode(), "application/json", [])


class Handler:
    """The service's ``handler`` export: dispatches calls to the ``@method`` functions."""

    def describe(self) -> _handler.Description:
        return _handler.Description(
            methods=list(_methods),
            subscriptions=[
                _handler.Subscription(topic=t, queue_group=g, history=h)
                for (t, g, h, _) in _subscriptions
            ],
        )

    def handle(self, caller: _types.Caller, request: _types.Request) -> _types.Response:
        method = _methods.get(request.method)
        if method is None:
            known = ", ".join(sorted(_methods)) or "none"
            raise Err(_types.CallError_NotFound(f"no method {request.method!r} (methods: {known})"))
        try:
            body = _decode(request, method.body)
            if method.wants_context:
                ctx = Context(
                    method=request.method,
                    payload=request.payload,
                    content_type=request.content_type,
                    caller_service=caller.service,
                    caller_node=caller.node,
                    depth=caller.depth,
                    metadata=dict(request.metadata),
                )
                answer = method.fn(ctx, body)
            else:
                answer = method.fn(body)
            return _encode(request.method, answer)
        except CallError as e:
            raise Err(e.to_wit()) from None
        except Exception as e:  # a bug in the service: the caller learns what it was
            raise Err(_types.CallError_Failed(f"{type(e).__name__}: {e}")) from None


class Subscriber:
    """The service's ``subscriber`` export: hands each message to its ``@subscribe`` functions."""

    def on_message(self, message: _broker.Message) -> None:
        wrapped = Message._from_wit(message)
        receivers = [fn for (t, _, _, fn) in _subscriptions if t == message.topic]
        if not receivers:
            raise Err(f"no receiver for topic {message.topic!r}")
        for fn in receivers:
            try:
                fn(wrapped)
            except Exception as e:
                raise Err(f"{fn.__name__}: {type(e).__name__}: {e}") from None
