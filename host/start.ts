// start.ts -- `npm start`: the embedded default job. Until the sample servers
// exist it makes sure a default pool exists under ./data/ and shows its info,
// so a first run demonstrates the pool, the detected persistence mode and the
// flush instruction on this machine.

import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { formatPoolInfo } from "./format.js";
import { PasteError } from "./errors.js";
import { Pool } from "./pool.js";

const path = process.env.PASTE_POOL ?? "data/default.pool";
const size = 64 * 1024 * 1024;

try {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    Pool.create(path, { size });
    console.log(`created the default pool ${path} (64 MiB); set PASTE_POOL to use another path\n`);
  }
  const pool = Pool.open(path, { readOnly: true });
  try {
    console.log(formatPoolInfo(pool.info()));
  } finally {
    pool.close();
  }
  console.log(`\nnext: npx paste-host pool create /dev/shm/my.pool --size 256M   (see README.md)`);
} catch (e) {
  if (!(e instanceof PasteError)) throw e;
  console.error(`paste-host: ${e.code}: ${e.message}`);
  process.exit(1);
}
