import { defineConfig } from "vitest/config";

// The TCP suite runs once per engine of the TCP port: "default" runs every
// file with the default engine (auto: io_uring here), "epoll" runs the files
// that serve over TCP again with PASTE_PORT_ENGINE=epoll (the fallback where
// io_uring is refused), which every host they start (in process or spawned)
// picks up.
const TCP = [
  "test/kv-wal.test.ts", "test/samples.test.ts", "test/deploy.test.ts", "test/admin.test.ts", "test/clean.test.ts",
  "test/http-rfc9112.test.ts", "test/trace.test.ts", "test/busypoll.test.ts", "test/torture.test.ts", "test/fuzz/kv-wal.fuzz.test.ts",
  "test/fuzz/http-wal.fuzz.test.ts", "test/fuzz/wal-append.fuzz.test.ts", "test/fuzz/admin.fuzz.test.ts",
  "test/fuzz/boundary.fuzz.test.ts",
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
      { extends: true, test: { name: "epoll", include: TCP, env: { PASTE_PORT_ENGINE: "epoll" } } },
    ],
  },
});
