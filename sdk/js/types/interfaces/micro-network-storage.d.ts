declare module 'micro:network/storage@0.1.0' {
  export function get(key: string): Uint8Array | undefined;
  /**
   * Sets a value; when this returns the write is durable.
   */
  export function set(key: string, value: Uint8Array): void;
  /**
   * Deletes a key; returns whether it existed.
   */
  export { _delete as delete };
  function _delete(key: string): boolean;
  /**
   * Keys starting with `prefix`, in order, after `start-after`, at most `limit` (capped by the node).
   */
  export function list(prefix: string, startAfter: string | undefined, limit: number): Page;
  /**
   * Sets `key` to `new` (none deletes) only if its current value is `expected` (none: absent).
   * Returns whether the swap happened.
   */
  export function compareAndSwap(key: string, expected: Uint8Array | undefined, new_: Uint8Array | undefined): boolean;
  export type StorageError = StorageErrorInvalidKey | StorageErrorTooLarge | StorageErrorIo;
  /**
   * The key is empty or longer than the node allows.
   */
  export interface StorageErrorInvalidKey {
    tag: 'invalid-key',
    val: string,
  }
  /**
   * The value exceeds the node's value size limit.
   */
  export interface StorageErrorTooLarge {
    tag: 'too-large',
    val: string,
  }
  /**
   * The node could not read or write its store.
   */
  export interface StorageErrorIo {
    tag: 'io',
    val: string,
  }
  /**
   * One page of a listing.
   */
  export interface Page {
    entries: Array<[string, Uint8Array]>,
    /**
     * Pass as `start-after` to get the next page; none when this is the last.
     */
    next?: string,
  }
}
