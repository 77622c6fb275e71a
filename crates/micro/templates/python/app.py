"""{{name}}: a micro service."""

from dataclasses import dataclass

import micro


@dataclass
class Greet:
    name: str = "world"


@micro.method
def greet(body: Greet) -> dict:
    return {"message": f"Hello from {{name}}, {body.name}!"}


from micro import Handler, Subscriber  # noqa: E402,F401 - the service's exports
