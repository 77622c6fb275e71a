// Builds a component from a JavaScript module with componentize-js:
//   node componentize.mjs <source.js> <wit dir> <world> <out.wasm>
// The node passes the location of componentize-js in MICRO_COMPONENTIZE_JS.
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
const [source, witPath, worldName, out] = process.argv.slice(2);
const { componentize } = await import(pathToFileURL(process.env.MICRO_COMPONENTIZE_JS).href);
const { component } = await componentize({ sourcePath: source, witPath, worldName, disableFeatures: [] });
await writeFile(out, component);
console.error(`componentize-js: wrote ${out} (${component.length} bytes)`);
