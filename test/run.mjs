// run.mjs -- `npm test`: run vitest, then print the one closing line CI reads,
// "N passed, N failed, N skipped", computed from vitest's JSON report.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, ".test-results");
const report = join(outDir, "vitest.json");
mkdirSync(outDir, { recursive: true });
rmSync(report, { force: true });

const vitest = join(root, "node_modules", "vitest", "vitest.mjs");
const r = spawnSync(
  process.execPath,
  [vitest, "run", "--config", "test/vitest.config.ts", "--reporter=default", "--reporter=json",
    `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { cwd: root, stdio: "inherit" },
);

let counts;
try {
  const j = JSON.parse(readFileSync(report, "utf8"));
  counts = {
    passed: j.numPassedTests,
    failed: j.numFailedTests + filesFailedWithoutTests(j),
    skipped: (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0),
  };
} catch (e) {
  console.error(`test/run.mjs: no vitest report at ${report}: ${e.message}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}

// A file that fails to load (or whose beforeAll throws) has no failed test,
// only a failed file: count it as one failure so it can never read as green.
function filesFailedWithoutTests(j) {
  return j.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
}

const total = counts.passed + counts.failed;
console.log(`${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
if (total === 0) {
  console.error("test/run.mjs: no test ran");
  process.exit(1);
}
process.exit(r.status === 0 && counts.failed === 0 ? 0 : 1);
