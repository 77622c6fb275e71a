"""Hello, in Python: one method, typed input, JSON out."""

from dataclasses import dataclass

import micro


@dataclass
class Greet:
    name: str = "world"


@micro.method
def greet(ctx: micro.Context, body: Greet) -> dict:
    caller = ctx.caller_service or "outside"
    return {"message": f"Hello from Python, {body.name}!", "caller": caller}


from micro import Handler, Subscriber  # noqa: E402,F401 - the service's exports
