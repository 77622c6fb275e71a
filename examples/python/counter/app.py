"""Counters kept in the service's storage: incr, get, list."""

from dataclasses import dataclass

import micro
from micro import storage


@dataclass
class Incr:
    name: str = "default"
    by: int = 1


@dataclass
class Name:
    name: str = "default"


@micro.method
def incr(body: Incr) -> dict:
    key = f"count/{body.name}"
    # compare-and-swap: two calls at once never lose an increment.
    while True:
        old = storage.get(key)
        value = (int(old) if old else 0) + body.by
        if storage.compare_and_swap(key, old, str(value).encode()):
            return {"name": body.name, "value": value}


@micro.method
def get(body: Name) -> dict:
    return {"name": body.name, "value": storage.get_json(f"count/{body.name}", 0)}


@micro.method(name="list")
def list_counters(body: None) -> list:
    entries, _ = storage.list("count/", None, 100)
    return [{"name": k[len("count/"):], "value": int(v)} for k, v in entries]


from micro import Handler, Subscriber  # noqa: E402,F401 - the service's exports
