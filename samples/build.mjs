// build.mjs -- `npm run build:samples` (part of `npm install`): build every
// sample handler, samples/NAME/NAME.ts -> samples/NAME/NAME.wasm, with the
// same `paste-host build` a user runs.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildHandler } from "../dist/host/core/build.js";

const here = dirname(fileURLToPath(import.meta.url));
const names = readdirSync(here).filter((d) => statSync(join(here, d)).isDirectory() && existsSync(join(here, d, `${d}.ts`)));
for (const name of names) {
  const t0 = Date.now();
  const out = await buildHandler(join(here, name, `${name}.ts`), join(here, name, `${name}.wasm`));
  console.log(`built ${out.slice(here.length - "samples".length)} in ${Date.now() - t0} ms`);
}
