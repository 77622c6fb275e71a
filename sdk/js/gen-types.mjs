// Generates TypeScript declarations of the `micro:network` WIT interfaces (as a guest sees
// them) into types/, with jco's type generator:
//   node sdk/js/gen-types.mjs [<wit dir> [<out dir>]]
// jco 1.35.0's `jco types` cannot read WIT files on our machines, so its generator is called
// with the package's text instead. MICRO_JS_TOOLS names the npm project holding jco
// (default: ~/.cache/micro/js, where ./scripts/serve installs sdk/js/package.json).
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [wit = join(here, '../../wit'), out = join(here, 'types')] = process.argv.slice(2);
const tools = process.env.MICRO_JS_TOOLS || join(homedir(), '.cache/micro/js');
const bindgen = await import(
  pathToFileURL(
    join(tools, 'node_modules/@bytecodealliance/jco-transpile/vendor/js-component-bindgen-component.js'),
  ).href
);
await bindgen.$init;

// One package, one text: every file of the directory, each without its package line.
let source = '';
for (const file of readdirSync(wit).filter((f) => f.endsWith('.wit')).sort()) {
  source += readFileSync(join(wit, file), 'utf8').replace(/^package [^;]+;/m, '') + '\n';
}
const files = bindgen.generateTypes('micro-network', {
  wit: { tag: 'source', val: `package micro:network@0.1.0;\n${source}` },
  world: 'event-service',
  guest: true,
  tlaCompat: false,
  features: { tag: 'list', val: [] },
});
rmSync(out, { recursive: true, force: true });
for (const [name, bytes] of files) {
  const path = join(out, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
}
console.log(`wrote ${files.length} declaration files to ${out}`);
