import { defineConfig } from "vitest/config";

// The TCP suite runs once per engine of the TCP port: "default" runs every
// file with the default engine (epoll), "uring" runs the files that serve
// over TCP again with PASTE_PORT_ENGINE=uring, which every host they start
// (in process or spawned) picks up. The boundary fuzzer stays out of the
// uring project until the hang it found there now and then is understood
// (host/core/tcp.ts, defaultEngine).
const TCP = [
  "test/kv-wal.test.ts", "test/samples.test.ts", "test/deploy.test.ts", "test/admin.test.ts", "test/clean.test.ts",
  "test/http-rfc9112.test.ts", "test/trace.test.ts", "test/torture.test.ts", "test/fuzz/kv-wal.fuzz.test.ts",
  "test/fuzz/http-wal.fuzz.test.ts", "test/fuzz/wal-append.fuzz.test.ts", "test/fuzz/admin.fuzz.test.ts",
];

export default defineConfig({
  test: {
    // Each file in its own process: tests map pool files into Wasm memories
    // and take flocks, which must not leak between files.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "default", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "uring", include: TCP, env: { PASTE_PORT_ENGINE: "uring" } } },
    ],
  },
});
