// Builds a component from a JavaScript source: node build.mjs <source> <wit dir> <out.wasm>
import { componentize } from '@bytecodealliance/componentize-js';
import { readFile, writeFile } from 'node:fs/promises';
const [source, witPath, out] = process.argv.slice(2);
const { component } = await componentize({
  sourcePath: source,
  witPath,
  worldName: 'service',
  disableFeatures: [],
});
await writeFile(out, component);
console.log(`built ${out} (${component.length} bytes)`);
