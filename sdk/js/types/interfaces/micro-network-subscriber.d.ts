/// <reference path="./micro-network-broker.d.ts" />
declare module 'micro:network/subscriber@0.1.0' {
  /**
   * Receives one message of a subscribed topic. An error is logged; the message is not redelivered.
   */
  export function onMessage(message: Message): void;
  export type Message = import('micro:network/broker@0.1.0').Message;
}
