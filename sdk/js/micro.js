// micro: write services for the micro network in JavaScript.
//
//   import { service } from 'micro';
//   export const { handler, subscriber } = service({
//     methods: {
//       greet(body, ctx) { return { message: `Hello, ${body.name}!` }; },
//     },
//     subscriptions: [{ topic: 'chat', receive(message) { /* … */ } }],
//   });
//
// The node builds the module with componentize-js against the `micro:network` WIT package;
// this is a thin layer over the bindings componentize-js generates, which stay reachable as
// `micro:network/<interface>@0.1.0` imports.

import { call as witCall } from 'micro:network/transport@0.1.0';
import * as witStorage from 'micro:network/storage@0.1.0';
import { publish as witPublish } from 'micro:network/broker@0.1.0';
import { log as witLog } from 'micro:network/logging@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A call failed: `kind` says how (`not-found`, `bad-request`, …), `message` says why. */
export class CallError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'CallError';
    this.kind = kind;
  }
}

const errorOf = (kind) => (message) => new CallError(kind, message);
/** No such service, method or thing. */
export const notFound = errorOf('not-found');
/** The caller may not do this. */
export const denied = errorOf('denied');
/** The service cannot take the call now; retrying may help. */
export const unavailable = errorOf('unavailable');
/** The call ran out of time. */
export const timeout = errorOf('timeout');
/** The request is malformed; the same request will fail again. */
export const badRequest = errorOf('bad-request');
/** The caller must pay or settle first. */
export const paymentRequired = errorOf('payment-required');
/** The service failed while handling the call. */
export const failed = errorOf('failed');

/** The error a WIT import threw, as a CallError (or the error itself when it is not one). */
function fromWit(e) {
  const payload = e && e.payload;
  if (payload && typeof payload.tag === 'string') {
    return new CallError(payload.tag, String(payload.val));
  }
  return e;
}

/** Runs `op`, turning a WIT variant error into an Error with its message. */
function unwrap(what, op) {
  try {
    return op();
  } catch (e) {
    const payload = e && e.payload;
    if (payload && typeof payload.tag === 'string') {
      throw new Error(`${what}: ${payload.tag}: ${payload.val}`);
    }
    throw e;
  }
}

/** The bytes of a string (UTF-8) or of a Uint8Array. */
function bytes(value) {
  return typeof value === 'string' ? encoder.encode(value) : value;
}

/** JSON, with 64-bit integers (BigInt) as numbers. */
function toJson(value) {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? Number(v) : v));
}

/** Calls `method` of `service` (`name` or `name@version`) with raw bytes; answers the response. */
export function callRaw(service, method, payload, contentType = 'application/json', metadata = {}) {
  try {
    return witCall({
      service,
      method,
      payload: bytes(payload),
      contentType,
      metadata: Object.entries(metadata),
    });
  } catch (e) {
    throw fromWit(e);
  }
}

/** Calls `method` of `service` with `body` as JSON; answers the JSON it returns. Throws a CallError. */
export function call(service, method, body) {
  const payload = body === undefined ? new Uint8Array() : encoder.encode(toJson(body));
  const response = callRaw(service, method, payload);
  if (!response.payload.length) return null;
  try {
    return JSON.parse(decoder.decode(response.payload));
  } catch (e) {
    throw failed(`${service}/${method} answered something that is not JSON: ${e.message}`);
  }
}

/** Publishes raw bytes to `topic` on every node; answers the message's sequence number. */
export function publishRaw(topic, payload, contentType = 'application/octet-stream') {
  return Number(unwrap('publish', () => witPublish(topic, bytes(payload), contentType)));
}

/** Publishes `value` as JSON to `topic`; answers the message's sequence number. */
export function publish(topic, value) {
  return publishRaw(topic, toJson(value), 'application/json');
}

/** The service's own durable key-value store. */
export const storage = {
  /** The value of `key` (a Uint8Array), or undefined. */
  get: (key) => unwrap('storage.get', () => witStorage.get(key)),
  /** Sets `key` (a string or Uint8Array); durable when this returns. */
  set: (key, value) => unwrap('storage.set', () => witStorage.set(key, bytes(value))),
  /** Deletes `key`; answers whether it existed. */
  delete: (key) => unwrap('storage.delete', () => witStorage.delete(key)),
  /** Up to `limit` [key, value] pairs with keys starting with `prefix`, after `startAfter`,
   * in order; and `next`, the key to pass as `startAfter` for the next page. */
  list: (prefix = '', startAfter = undefined, limit = 100) =>
    unwrap('storage.list', () => witStorage.list(prefix, startAfter, limit)),
  /** Sets `key` to `next` (undefined deletes) only if it holds `expected` (undefined: absent). */
  compareAndSwap: (key, expected, next) =>
    unwrap('storage.compareAndSwap', () =>
      witStorage.compareAndSwap(
        key,
        expected === undefined ? undefined : bytes(expected),
        next === undefined ? undefined : bytes(next),
      ),
    ),
  /** The value of `key` as JSON, or `fallback`. */
  getJson(key, fallback = null) {
    const value = this.get(key);
    return value === undefined ? fallback : JSON.parse(decoder.decode(value));
  },
  /** Sets `key` to `value` as JSON. */
  setJson(key, value) {
    this.set(key, toJson(value));
  },
};

/** Lines for the node's log, tagged with the service. */
export const log = {
  debug: (message) => witLog('debug', String(message)),
  info: (message) => witLog('info', String(message)),
  warn: (message) => witLog('warn', String(message)),
  error: (message) => witLog('error', String(message)),
};

/** An error answer for the node: componentize-js sends a thrown `payload` as the `err` case. */
function answerError(kind, message) {
  return { payload: { tag: kind, val: message } };
}

function decodeBody(request) {
  if (!request.payload.length) return undefined;
  try {
    return JSON.parse(decoder.decode(request.payload));
  } catch (e) {
    throw badRequest(`the body is not JSON: ${e.message}`);
  }
}

function encodeAnswer(method, answer) {
  if (answer instanceof Uint8Array) {
    return { payload: answer, contentType: 'application/octet-stream', metadata: [] };
  }
  let text;
  try {
    text = toJson(answer === undefined ? null : answer);
  } catch (e) {
    throw failed(`the answer of ${method} cannot be sent as JSON: ${e.message}`);
  }
  return { payload: encoder.encode(text), contentType: 'application/json', metadata: [] };
}

/**
 * Makes the service's exports from its methods and subscriptions:
 * `export const { handler, subscriber } = service({ methods, subscriptions })`.
 *
 * A method is `(body, ctx) => answer`: `body` is the request's JSON, `ctx` says who called
 * (`callerService`, `callerNode`, `depth`, `metadata`, `method`, `payload`); the answer is sent
 * as JSON (a Uint8Array as it is). Throwing a CallError (`notFound(…)`, `badRequest(…)` …)
 * answers that error; anything else thrown answers `failed` with its message.
 * A subscription is `{ topic, queueGroup?, history?, receive(message) }`.
 */
export function service({ methods = {}, subscriptions = [] } = {}) {
  const handler = {
    describe() {
      return {
        methods: Object.keys(methods),
        subscriptions: subscriptions.map((s) => ({
          topic: s.topic,
          queueGroup: s.queueGroup,
          history: Boolean(s.history),
        })),
      };
    },
    handle(caller, request) {
      const method = methods[request.method];
      if (typeof method !== 'function') {
        const known = Object.keys(methods).join(', ') || 'none';
        throw answerError('not-found', `no method "${request.method}" (methods: ${known})`);
      }
      try {
        const ctx = {
          method: request.method,
          payload: request.payload,
          contentType: request.contentType,
          callerService: caller.service,
          callerNode: caller.node,
          depth: caller.depth,
          metadata: Object.fromEntries(request.metadata),
        };
        return encodeAnswer(request.method, method(decodeBody(request), ctx));
      } catch (e) {
        if (e instanceof CallError) throw answerError(e.kind, e.message);
        const name = e && e.name ? e.name : 'Error';
        throw answerError('failed', `${name}: ${e && e.message !== undefined ? e.message : e}`);
      }
    },
  };
  const subscriber = {
    onMessage(message) {
      const receivers = subscriptions.filter((s) => s.topic === message.topic);
      if (!receivers.length) throw { payload: `no receiver for topic ${message.topic}` };
      const wrapped = {
        topic: message.topic,
        payload: message.payload,
        contentType: message.contentType,
        sequence: Number(message.sequence),
        publishedAtMs: Number(message.publishedAtMs),
        publisher: message.publisher,
        node: message.node,
        json: () => JSON.parse(decoder.decode(message.payload)),
        text: () => decoder.decode(message.payload),
      };
      for (const s of receivers) {
        try {
          s.receive(wrapped);
        } catch (e) {
          throw { payload: `${s.topic}: ${e && e.message !== undefined ? e.message : e}` };
        }
      }
    },
  };
  return { handler, subscriber };
}
