/// <reference path="./interfaces/micro-network-broker.d.ts" />
/// <reference path="./interfaces/micro-network-handler.d.ts" />
/// <reference path="./interfaces/micro-network-logging.d.ts" />
/// <reference path="./interfaces/micro-network-registry.d.ts" />
/// <reference path="./interfaces/micro-network-storage.d.ts" />
/// <reference path="./interfaces/micro-network-subscriber.d.ts" />
/// <reference path="./interfaces/micro-network-transport.d.ts" />
/// <reference path="./interfaces/micro-network-types.d.ts" />
declare module 'micro:network/event-service@0.1.0' {
  export type * as MicroNetworkBroker010 from 'micro:network/broker@0.1.0'; // import micro:network/broker@0.1.0
  export type * as MicroNetworkLogging010 from 'micro:network/logging@0.1.0'; // import micro:network/logging@0.1.0
  export type * as MicroNetworkRegistry010 from 'micro:network/registry@0.1.0'; // import micro:network/registry@0.1.0
  export type * as MicroNetworkStorage010 from 'micro:network/storage@0.1.0'; // import micro:network/storage@0.1.0
  export type * as MicroNetworkTransport010 from 'micro:network/transport@0.1.0'; // import micro:network/transport@0.1.0
  export type * as MicroNetworkTypes010 from 'micro:network/types@0.1.0'; // import micro:network/types@0.1.0
  export * as subscriber from 'micro:network/subscriber@0.1.0'; // export micro:network/subscriber@0.1.0
  export * as handler from 'micro:network/handler@0.1.0'; // export micro:network/handler@0.1.0
}
