// A service written in JavaScript with componentize-js directly against the micro:network WIT
// package (world `service`): the node must link everything such a component imports.
import { get, set } from 'micro:network/storage@0.1.0';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export const handler = {
  describe() {
    return { methods: ['greet'], subscriptions: [] };
  },
  handle(caller, request) {
    const body = request.payload.length ? JSON.parse(decoder.decode(request.payload)) : {};
    const previous = get('n');
    const n = (previous ? parseInt(decoder.decode(previous), 10) : 0) + 1;
    set('n', encoder.encode(String(n)));
    const out = { message: `Hello from JavaScript, ${body.name}!`, n };
    return { payload: encoder.encode(JSON.stringify(out)), contentType: 'application/json', metadata: [] };
  },
};
