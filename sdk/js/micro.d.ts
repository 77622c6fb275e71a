// Types of the micro JavaScript SDK (micro.js). The WIT interfaces underneath, importable as
// `micro:network/<interface>@0.1.0`, are declared in types/ (generated from the WIT package by
// gen-types.mjs).
/// <reference path="./types/micro-network.d.ts" />

/** How a call failed. */
export type CallErrorKind =
  | 'not-found'
  | 'denied'
  | 'unavailable'
  | 'timeout'
  | 'bad-request'
  | 'payment-required'
  | 'failed';

/** A call failed: `kind` says how, `message` says why. */
export class CallError extends Error {
  constructor(kind: CallErrorKind, message: string);
  kind: CallErrorKind;
}

export function notFound(message: string): CallError;
export function denied(message: string): CallError;
export function unavailable(message: string): CallError;
export function timeout(message: string): CallError;
export function badRequest(message: string): CallError;
export function paymentRequired(message: string): CallError;
export function failed(message: string): CallError;

/** JSON a method takes and answers. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Who called and how. */
export interface Context {
  method: string;
  payload: Uint8Array;
  contentType: string;
  /** The calling service; undefined for calls from outside (HTTP, CLI). */
  callerService?: string;
  callerNode: string;
  /** How many calls deep this call is (0 from outside). */
  depth: number;
  metadata: Record<string, string>;
}

/** A method: the request's JSON body and who called; answers JSON (or raw bytes). */
export type Method = (body: any, ctx: Context) => Json | Uint8Array | void | object;

/** One message of a subscribed topic. */
export interface Message {
  topic: string;
  payload: Uint8Array;
  contentType: string;
  sequence: number;
  publishedAtMs: number;
  publisher?: string;
  node: string;
  json(): any;
  text(): string;
}

export interface Subscription {
  topic: string;
  /** Members of one queue group share the messages. */
  queueGroup?: string;
  /** Replay the topic's retained messages when the service starts. */
  history?: boolean;
  receive(message: Message): void;
}

/** The exports the node calls, made by `service`. */
export interface Exports {
  handler: object;
  subscriber: object;
}

/** Makes the service's exports: `export const { handler, subscriber } = service({ … })`. */
export function service(definition: {
  methods?: Record<string, Method>;
  subscriptions?: Subscription[];
}): Exports;

/** Calls `method` of `service` with `body` as JSON; answers the JSON it returns. */
export function call(service: string, method: string, body?: unknown): any;

export interface Response {
  payload: Uint8Array;
  contentType: string;
  metadata: [string, string][];
}

/** Calls `method` of `service` with raw bytes. */
export function callRaw(
  service: string,
  method: string,
  payload: Uint8Array | string,
  contentType?: string,
  metadata?: Record<string, string>,
): Response;

/** Publishes `value` as JSON to `topic`; answers the message's sequence number. */
export function publish(topic: string, value: unknown): number;
/** Publishes raw bytes to `topic`. */
export function publishRaw(topic: string, payload: Uint8Array | string, contentType?: string): number;

export interface Page {
  entries: [string, Uint8Array][];
  next?: string;
}

/** The service's own durable key-value store. */
export const storage: {
  get(key: string): Uint8Array | undefined;
  set(key: string, value: Uint8Array | string): void;
  delete(key: string): boolean;
  list(prefix?: string, startAfter?: string, limit?: number): Page;
  compareAndSwap(
    key: string,
    expected: Uint8Array | string | undefined,
    next: Uint8Array | string | undefined,
  ): boolean;
  getJson<T = any>(key: string, fallback?: T): T;
  setJson(key: string, value: unknown): void;
};

/** Lines for the node's log, tagged with the service. */
export const log: {
  debug(message: unknown): void;
  info(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown): void;
};
