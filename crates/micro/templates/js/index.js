// {{name}}: a micro service.
import { service } from 'micro';

export const { handler, subscriber } = service({
  methods: {
    greet({ name = 'world' } = {}) {
      return { message: `Hello from {{name}}, ${name}!` };
    },
  },
});
