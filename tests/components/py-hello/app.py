# A service written in Python with componentize-py directly against the micro:network WIT
# package (world `service`): the node must link everything such a component imports.
import json
from wit_world import exports
from wit_world.exports import handler
from wit_world.imports import types, storage

class Handler(exports.Handler):
    def describe(self) -> handler.Description:
        return handler.Description(methods=["greet"], subscriptions=[])

    def handle(self, caller: types.Caller, request: types.Request) -> types.Response:
        body = json.loads(request.payload or b"{}")
        n = int((storage.get("n") or b"0").decode()) + 1
        storage.set("n", str(n).encode())
        out = {"message": f"Hello from Python, {body.get('name')}!", "n": n}
        return types.Response(payload=json.dumps(out).encode(), content_type="application/json", metadata=[])
