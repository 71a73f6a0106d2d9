// config.ts -- how many cases a property runs, and from which seed. In
// `npm test` each property runs its small default; `npm run fuzz -- --runs N
// [--seed S] [--path P]` (test/fuzz/run.mjs) sets these through the
// environment. A failure prints fast-check's report: the seed and path to
// replay it, and the counterexample shrunk to its smallest form.
import type fc from "fast-check";

export interface Fuzz<T> {
  parameters: fc.Parameters<T>;
  /** Call once per case: under `npm run fuzz`, prints a progress line every 5 %. */
  tick: () => void;
  /** How long the whole run may take: each case is a few round trips, at most a second or two. */
  timeoutMs: number;
}

export function fuzz<T>(name: string, small: number): Fuzz<T> {
  const numRuns = Number(process.env.PASTE_FUZZ_RUNS ?? small);
  if (!Number.isInteger(numRuns) || numRuns < 1) throw new Error(`PASTE_FUZZ_RUNS must be a positive integer, not ${process.env.PASTE_FUZZ_RUNS}`);
  const seed = process.env.PASTE_FUZZ_SEED === undefined ? undefined : Number(process.env.PASTE_FUZZ_SEED);
  const path = process.env.PASTE_FUZZ_PATH;
  const loud = process.env.PASTE_FUZZ_RUNS !== undefined;
  const every = Math.max(50, Math.round(numRuns / 20));
  const started = Date.now();
  let done = 0;
  return {
    parameters: { numRuns, seed, path },
    tick: () => {
      done++;
      if (loud && done % every === 0) {
        const s = (Date.now() - started) / 1000;
        console.log(`fuzz ${name}: ${done}/${numRuns} cases in ${s.toFixed(0)} s (${(done / s).toFixed(1)}/s)`);
      }
    },
    timeoutMs: 60_000 + numRuns * 2_000,
  };
}
