// Counters kept in the service's storage: incr, get, list.
import { service, storage } from 'micro';

const key = (name) => `count/${name}`;
const read = (bytes) => (bytes === undefined ? 0 : Number(new TextDecoder().decode(bytes)));

export const { handler, subscriber } = service({
  methods: {
    incr({ name = 'default', by = 1 } = {}) {
      // compare-and-swap: two calls at once never lose an increment.
      for (;;) {
        const old = storage.get(key(name));
        const value = read(old) + by;
        if (storage.compareAndSwap(key(name), old, String(value))) return { name, value };
      }
    },
    get({ name = 'default' } = {}) {
      return { name, value: read(storage.get(key(name))) };
    },
    list() {
      return storage
        .list('count/', undefined, 100)
        .entries.map(([k, v]) => ({ name: k.slice('count/'.length), value: read(v) }));
    },
  },
});
