"""Publishing to topics, and the messages subscribers receive."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from componentize_py_types import Err
from wit_world.imports import broker as _broker


class PublishError(Exception):
    """A message could not be published (invalid topic, too large, node unavailable)."""


@dataclass
class Message:
    """One message of a subscribed topic."""

    topic: str
    payload: bytes
    content_type: str
    sequence: int
    published_at_ms: int
    publisher: Optional[str]
    node: str

    def json(self) -> Any:
        """The payload as JSON."""
        return json.loads(self.payload)

    def text(self) -> str:
        """The payload as UTF-8 text."""
        return self.payload.decode()

    @staticmethod
    def _from_wit(m: "_broker.Message") -> "Message":
        return Message(
            m.topic, m.payload, m.content_type, m.sequence, m.published_at_ms, m.publisher, m.node
        )


def publish_raw(topic: str, payload: bytes, content_type: str = "application/octet-stream") -> int:
    """Publishes raw bytes to ``topic`` on every node; answers the message's sequence number."""
    try:
        return _broker.publish(topic, payload, content_type)
    except Err as e:
        raise PublishError(getattr(e.value, "value", str(e.value))) from None


def publish(topic: str, value: Any) -> int:
    """Publishes ``value`` as JSON to ``topic``; answers the message's sequence number."""
    return publish_raw(topic, json.dumps(value).encode(), "application/json")
