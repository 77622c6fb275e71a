"""Rooms of messages over the broker, the same protocol as the Rust chat example: `post`
publishes to topic `chat`, every chat (in any language) receives and keeps it, `history`
reads what was kept."""

from dataclasses import dataclass

import micro
from micro import storage

TOPIC = "chat"


@dataclass
class Post:
    room: str
    text: str


@dataclass
class Room:
    room: str


@micro.method
def post(body: Post) -> dict:
    return {"sequence": micro.publish(TOPIC, {"room": body.room, "text": body.text})}


@micro.method
def history(body: Room) -> list:
    entries, _ = storage.list(f"room/{body.room}/", None, 1000)
    return [value.decode() for _, value in entries]


@micro.subscribe(TOPIC, history=True)
def keep(message: micro.Message) -> None:
    post = message.json()
    # Keyed by publishing node and sequence, which identify a message in the network: a
    # replayed message overwrites itself.
    storage.set(f"room/{post['room']}/{message.node}-{message.sequence:020}", post["text"])


from micro import Handler, Subscriber  # noqa: E402,F401 - the service's exports
