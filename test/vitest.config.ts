import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Each file in its own process: tests map pool files into Wasm memories
    // and take flocks, which must not leak between files.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
