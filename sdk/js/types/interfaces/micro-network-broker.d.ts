declare module 'micro:network/broker@0.1.0' {
  /**
   * Publishes a message to subscribers on every node; returns its sequence number in the
   * topic on this node.
   */
  export function publish(topic: string, payload: Uint8Array, contentType: string): bigint;
  /**
   * One published message.
   */
  export interface Message {
    topic: string,
    payload: Uint8Array,
    contentType: string,
    /**
     * Position in the topic on the publishing node, increasing by one per message there.
     * `node` and `sequence` together identify a message in the network.
     */
    sequence: bigint,
    /**
     * Milliseconds since the Unix epoch when the node accepted it.
     */
    publishedAtMs: bigint,
    /**
     * The publishing service, or none for messages from outside.
     */
    publisher?: string,
    /**
     * The node that accepted the message (its id).
     */
    node: string,
  }
  export type PublishError = PublishErrorInvalidTopic | PublishErrorTooLarge | PublishErrorUnavailable;
  /**
   * The topic name is empty, too long, or has characters other than letters, digits and `.-_/`.
   */
  export interface PublishErrorInvalidTopic {
    tag: 'invalid-topic',
    val: string,
  }
  /**
   * The payload exceeds the node's message size limit.
   */
  export interface PublishErrorTooLarge {
    tag: 'too-large',
    val: string,
  }
  /**
   * The node could not record the message.
   */
  export interface PublishErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
}
