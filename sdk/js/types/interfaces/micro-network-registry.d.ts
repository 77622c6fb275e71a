/// <reference path="./micro-network-types.d.ts" />
declare module 'micro:network/registry@0.1.0' {
  /**
   * Every service version this node knows (its own and those it called or looked up: a
   * local view of a network too large to list), each with the nodes that serve it. The WIT of
   * a version that runs only on other nodes is empty here: `lookup` fetches it.
   */
  export function list(): Array<ServiceRecord>;
  /**
   * One service by name (`name` or `name@version`), wherever it runs: the version this
   * node serves, else one another node serves; its WIT is fetched from a node that has it.
   */
  export function lookup(name: string): ServiceRecord | undefined;
  export type Metadata = import('micro:network/types@0.1.0').Metadata;
  /**
   * A self-describing record of one service version.
   */
  export interface ServiceRecord {
    name: string,
    version: string,
    /**
     * The WIT text of the component's world, as extracted from the component itself.
     */
    wit: string,
    /**
     * The methods the service's handler answers.
     */
    methods: Array<string>,
    /**
     * The nodes that serve it.
     */
    nodes: Array<string>,
    metadata: Metadata,
  }
}
