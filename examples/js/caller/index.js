// Calls a service written in another language: `greet` asks the Python `py-hello` example.
import { service, call, CallError, unavailable } from 'micro';

export const { handler, subscriber } = service({
  methods: {
    greet({ name = 'world', service: target = 'py-hello' } = {}) {
      try {
        const answer = call(target, 'greet', { name });
        return { relayed: answer.message, by: 'javascript' };
      } catch (e) {
        if (e instanceof CallError && e.kind === 'not-found') {
          throw unavailable(`${target} is not running: ${e.message}`);
        }
        throw e;
      }
    },
  },
});
