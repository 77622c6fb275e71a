/// <reference path="./micro-network-types.d.ts" />
declare module 'micro:network/handler@0.1.0' {
  /**
   * Called once at deploy time.
   */
  export function describe(): Description;
  /**
   * Answers one call.
   */
  export function handle(caller: Caller, request: Request): Response;
  export type Request = import('micro:network/types@0.1.0').Request;
  export type Response = import('micro:network/types@0.1.0').Response;
  export type CallError = import('micro:network/types@0.1.0').CallError;
  export type Caller = import('micro:network/types@0.1.0').Caller;
  /**
   * A subscription a service asks for at deploy time.
   */
  export interface Subscription {
    topic: string,
    /**
     * Members of one queue group share the messages: each goes to one member.
     */
    queueGroup?: string,
    /**
     * Replay the retained recent messages of the topic when subscribing.
     */
    history: boolean,
  }
  /**
   * What a service says about itself.
   */
  export interface Description {
    methods: Array<string>,
    subscriptions: Array<Subscription>,
  }
}
