// Hello, in JavaScript: one method, JSON in and out.
import { service } from 'micro';

export const { handler, subscriber } = service({
  methods: {
    greet({ name = 'world' } = {}, ctx) {
      return { message: `Hello from JavaScript, ${name}!`, caller: ctx.callerService ?? 'outside' };
    },
  },
});
