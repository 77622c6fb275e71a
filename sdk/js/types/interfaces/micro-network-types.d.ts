declare module 'micro:network/types@0.1.0' {
  /**
   * Free-form key/value pairs carried with a request or response.
   */
  export type Metadata = Array<[string, string]>;
  /**
   * A call to one method of one service.
   */
  export interface Request {
    /**
     * The service to call: `name`, or `name@version` to pin one version.
     */
    service: string,
    /**
     * The method to call on it.
     */
    method: string,
    /**
     * The request body.
     */
    payload: Uint8Array,
    /**
     * The media type of `payload`; `application/json` unless said otherwise.
     */
    contentType: string,
    metadata: Metadata,
  }
  /**
   * What a handler answers.
   */
  export interface Response {
    payload: Uint8Array,
    contentType: string,
    metadata: Metadata,
  }
  /**
   * Why a call failed; each case tells the caller what it can do about it.
   */
  export type CallError = CallErrorNotFound | CallErrorDenied | CallErrorUnavailable | CallErrorTimeout | CallErrorBadRequest | CallErrorPaymentRequired | CallErrorFailed;
  /**
   * No such service or method.
   */
  export interface CallErrorNotFound {
    tag: 'not-found',
    val: string,
  }
  /**
   * The caller may not make this call.
   */
  export interface CallErrorDenied {
    tag: 'denied',
    val: string,
  }
  /**
   * The service cannot take the call now (overloaded, stopping, no route); retrying may help.
   */
  export interface CallErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
  /**
   * The call ran out of time.
   */
  export interface CallErrorTimeout {
    tag: 'timeout',
    val: string,
  }
  /**
   * The request was malformed; retrying the same request will fail again.
   */
  export interface CallErrorBadRequest {
    tag: 'bad-request',
    val: string,
  }
  /**
   * The caller must pay or settle before this call is served.
   */
  export interface CallErrorPaymentRequired {
    tag: 'payment-required',
    val: string,
  }
  /**
   * The service failed while handling the call (a trap, a bug, an exhausted limit).
   */
  export interface CallErrorFailed {
    tag: 'failed',
    val: string,
  }
  /**
   * Who made a call, as the callee sees it.
   */
  export interface Caller {
    /**
     * The calling service, when a service made the call; none for calls from outside (HTTP, CLI).
     */
    service?: string,
    /**
     * The node the call came from.
     */
    node: string,
    /**
     * How many calls deep this call is (0 for a call from outside).
     */
    depth: number,
  }
}
