// Builds a component from a JavaScript module with componentize-js:
//   node componentize.mjs <source.js> <wit dir> <world> <out.wasm>
// The module's own imports are bundled first with esbuild: relative files, and `micro` (the
// node's JavaScript SDK); `micro:network/…` and `wasi:…` stay imports of the component.
// The node passes the npm project holding the tools in MICRO_JS_TOOLS and the SDK's directory
// in MICRO_SDK_JS.
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [source, witPath, worldName, out] = process.argv.slice(2);
const tools = process.env.MICRO_JS_TOOLS;
const esbuild = createRequire(join(tools, 'package.json'))('esbuild');
// componentize-js exports an ES module only: load it by its path.
const { componentize } = await import(
  pathToFileURL(join(tools, 'node_modules/@bytecodealliance/componentize-js/src/componentize.js')).href
);

const bundle = join(dirname(out), 'bundle.js');
await esbuild.build({
  entryPoints: [source],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  mainFields: ['module', 'main'],
  target: 'es2022',
  outfile: bundle,
  external: ['micro:network/*', 'wasi:*'],
  alias: { micro: join(process.env.MICRO_SDK_JS, 'micro.js') },
  logLevel: 'warning',
});
const { component } = await componentize({
  sourcePath: bundle,
  witPath,
  worldName,
  disableFeatures: [],
});
await writeFile(out, component);
console.error(`componentize-js: wrote ${out} (${component.length} bytes)`);
