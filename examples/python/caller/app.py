"""Calls a service written in another language: `greet` asks the Rust `hello` example."""

from dataclasses import dataclass

import micro


@dataclass
class Greet:
    name: str = "world"
    service: str = "hello"


@micro.method
def greet(body: Greet) -> dict:
    try:
        answer = micro.call(body.service, "greet", {"name": body.name})
    except micro.NotFound as e:
        raise micro.Unavailable(f"{body.service} is not running: {e.message}")
    return {"relayed": answer["message"], "by": "python"}


from micro import Handler, Subscriber  # noqa: E402,F401 - the service's exports
