// Rooms of messages over the broker, the same protocol as the Rust and Python chat examples:
// `post` publishes to topic `chat`, every chat (in any language) receives and keeps it,
// `history` reads what was kept.
import { service, storage, publish } from 'micro';

const TOPIC = 'chat';

export const { handler, subscriber } = service({
  methods: {
    post({ room, text }) {
      return { sequence: publish(TOPIC, { room, text }) };
    },
    history({ room }) {
      const decoder = new TextDecoder();
      return storage.list(`room/${room}/`, undefined, 1000).entries.map(([, v]) => decoder.decode(v));
    },
  },
  subscriptions: [
    {
      topic: TOPIC,
      history: true,
      receive(message) {
        const { room, text } = message.json();
        // Keyed by publishing node and sequence, which identify a message in the network.
        const sequence = String(message.sequence).padStart(20, '0');
        storage.set(`room/${room}/${message.node}-${sequence}`, text);
      },
    },
  ],
});
