/// <reference path="./micro-network-types.d.ts" />
declare module 'micro:network/transport@0.1.0' {
  /**
   * Calls a service and waits for its answer. The callee sees the calling service as its caller.
   */
  export function call(request: Request): Response;
  export type Request = import('micro:network/types@0.1.0').Request;
  export type Response = import('micro:network/types@0.1.0').Response;
  export type CallError = import('micro:network/types@0.1.0').CallError;
}
