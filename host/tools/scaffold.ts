// scaffold.ts -- `paste-host init DIR [--template NAME]`: a handler project
// that builds, type-checks and tests out of the box:
//
//   package.json        paste-host as a dependency; scripts build, test, dev, deploy
//   asconfig.json       extends the SDK's (paste-host build uses it)
//   tsconfig.json       AssemblyScript's types for tsc and the editor
//   vitest.config.ts    timeouts that allow for a handler build in a test
//   assembly/handler.ts the handler (samples/templates/blank, or a sample)
//   test/handler.test.ts  its tests, with paste-host/testing
//   README.md, .gitignore
//
// The handler and its test come from samples/templates/ and samples/ in this
// package; the rest is written here, with the versions this package was
// built and tested with.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { UsageError } from "../core/errors.js";
import { packageRoot } from "../core/native.js";

interface Template {
  about: string;
  /** The handler's source, from the package root. */
  handler: string;
  /** A port for `npm run dev`, and how to talk to it. */
  port: number;
  tryIt: string;
}

export const TEMPLATES = {
  blank: {
    about: "a line log: every line a client sends becomes a durable record, answered with its sequence number",
    handler: "samples/templates/blank/handler.ts", port: 7000, tryIt: "printf 'hello\\n' | nc -q1 127.0.0.1 7000",
  },
  kv: {
    about: "a Redis-compatible key-value store (SET, GET, DEL, ...), every write durable before its +OK",
    handler: "samples/kv-wal/kv-wal.ts", port: 6380, tryIt: "redis-cli -p 6380 set greeting hello",
  },
  http: {
    about: "HTTP/1.1 POST bodies logged by reference, answered 201 with their sequence number once durable",
    handler: "samples/http-wal/http-wal.ts", port: 8080, tryIt: "curl -d 'hello' http://127.0.0.1:8080/events",
  },
  frames: {
    about: "length-prefixed frames in (u32 length, then the payload), u64 sequence numbers out once durable",
    handler: "samples/wal-append/wal-append.ts", port: 7070, tryIt: "npx paste-host wal-client --connect tcp://127.0.0.1:7070 --frames 1000",
  },
} as const satisfies Record<string, Template>;

export type TemplateName = keyof typeof TEMPLATES;

export interface InitOptions {
  template?: TemplateName;
  /** The paste-host dependency as npm takes it (default ^VERSION of this package; a file:...tgz to test a packed one). */
  pasteHostSpec?: string;
}

interface Manifest {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

/** initProject -- write a new project into dir (missing or empty); the files written, relative to it. */
export function initProject(dir: string, o: InitOptions = {}): string[] {
  const name = o.template ?? "blank";
  if (!Object.hasOwn(TEMPLATES, name)) throw new UsageError(`unknown template '${name}': choose one of ${Object.keys(TEMPLATES).join(", ")}`);
  const t: Template = TEMPLATES[name];
  const root = resolve(dir);
  if (existsSync(root) && readdirSync(root).length > 0) {
    throw new UsageError(`${dir} exists and is not empty: init writes a new project into a new or empty directory`);
  }
  const pkgRoot = packageRoot();
  const self = JSON.parse(readFileSync(join(pkgRoot, "package.json"), "utf8")) as Manifest;
  const files: [string, string][] = [
    ["package.json", packageJson(root, t, o.pasteHostSpec ?? `^${self.version}`, self)],
    ["asconfig.json", `${JSON.stringify({ extends: "paste-host/asconfig.json", options: {} }, null, 2)}\n`],
    ["tsconfig.json", TSCONFIG],
    ["vitest.config.ts", VITEST_CONFIG],
    [join("assembly", "handler.ts"), readFileSync(join(pkgRoot, t.handler), "utf8")],
    [join("test", "handler.test.ts"), readFileSync(join(pkgRoot, "samples", "templates", name, "handler.test.ts"), "utf8")],
    ["README.md", readme(basename(root), name, t)],
    [".gitignore", "node_modules/\nbuild/\ndata/\n"],
  ];
  for (const [file, text] of files) {
    mkdirSync(join(root, file, ".."), { recursive: true });
    writeFileSync(join(root, file), text);
  }
  return files.map(([f]) => f);
}

function packageJson(root: string, t: Template, spec: string, self: Manifest): string {
  const name = basename(root).toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[._-]+/, "") || "handler";
  const pool = "${PASTE_POOL:-data/dev.pool}";
  return `${JSON.stringify({
    name, version: "0.1.0", private: true, type: "module",
    scripts: {
      build: "paste-host build assembly/handler.ts -o build/handler.wasm",
      test: "tsc --noEmit -p tsconfig.json && vitest run",
      dev: `paste-host dev assembly/handler.ts --pool "${pool}" --listen tcp://127.0.0.1:${t.port}`,
      deploy: `npm run build && paste-host deploy build/handler.wasm --pool "${pool}"`,
    },
    dependencies: { "paste-host": spec },
    // the versions paste-host itself is built and tested with
    devDependencies: {
      assemblyscript: self.dependencies.assemblyscript,
      typescript: self.devDependencies.typescript,
      vitest: self.devDependencies.vitest,
    },
  }, null, 2)}\n`;
}

// AssemblyScript's own tsconfig gives tsc its types (u32, load<T>, @unmanaged);
// @unmanaged classes mirror C structs, whose fields have no initialisers.
const TSCONFIG = `${JSON.stringify({
  extends: "assemblyscript/std/assembly.json",
  compilerOptions: { strictPropertyInitialization: false, noEmit: true },
  include: ["assembly/**/*.ts"],
}, null, 2)}\n`;

const VITEST_CONFIG = `import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // a test that opens a handler from its .ts builds it first (seconds), and crashImages reopens many images
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
`;

function readme(project: string, name: string, t: Template): string {
  return `# ${project}

A paste-host log handler: ${t.about}
(made with \`paste-host init --template ${name}\`).

\`\`\`sh
npm install          # paste-host builds its native library (needs gcc and make)
npm run build        # assembly/handler.ts -> build/handler.wasm
npm test             # type-check the handler (tsc), then its tests (vitest)
npm run dev          # serve on tcp://127.0.0.1:${t.port} (pool: data/dev.pool); every save rebuilds and deploys
npm run deploy       # build, then swap it into the host that serves data/dev.pool
\`\`\`

Try it while \`npm run dev\` serves: \`${t.tryIt}\`

| file | what |
|---|---|
| \`assembly/handler.ts\` | the handler (AssemblyScript); the SDK is \`paste-host/assembly\` |
| \`test/handler.test.ts\` | its tests: \`paste-host/testing\` runs it on a temporary pool, restarts it, and checks crash images |
| \`asconfig.json\` | build settings: extends the SDK's; add asc options here |
| \`tsconfig.json\` | AssemblyScript's types, so \`tsc\` and the editor check the handler |

The handler guide, with the SDK and the test harness, is
\`node_modules/paste-host/docs/handlers.md\`; every command is in
\`node_modules/paste-host/docs/cli.md\`.
`;
}
