// build.ts -- `paste-host build handler.ts -o handler.wasm`: asc with the
// SDK's settings, so a handler author never has to know them. They are in the
// package's asconfig.json (the samples build with it; a project made by
// `paste-host init` extends it):
//
//   importMemory               the host creates the memory and maps the pool into it
//   memoryBase 2147483648      the handler's data and heap start above the window (2 GiB)
//   runtime incremental        a collecting GC: handlers run for months
//   exportRuntime              __new/__pin for the host's loader
//   optimizeLevel 3            handlers sit on the request path
//
// The build uses the handler project's own asconfig.json (the nearest one up
// to its package.json), else the SDK's, so a project can add options (noAssert,
// transforms, ...). The four ABI settings are passed on the command line as
// well, which wins over any config: a project cannot build a module the host
// would refuse.
//
// The handler's module is compiled through a generated entry that re-exports
// it and adds the SDK's ABI exports: paste_abi_version(), which the host
// checks, and paste_end(), which it calls after each call into the handler.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { BuildError } from "./errors.js";
import { CONST } from "./layout.js";
import { abortSites } from "./abortsite.js";
import { packageRoot } from "./native.js";

export interface BuildOptions {
  /** Optimize (-O3); default true. */
  optimize?: boolean;
  /** Keep debug names and a source map next to the output. */
  debug?: boolean;
  /** Told each file asc read (the handler, what it imports, the config): what `paste-host dev` watches. */
  onRead?: (file: string) => void;
}

/** The ABI settings of asconfig.json, enforced (test/build.test.ts keeps the two the same). */
export const ASC_FLAGS = [
  "--importMemory",
  "--memoryBase", String(CONST.PASTE_HANDLER_BASE),
  "--runtime", "incremental",
  "--exportRuntime",
] as const;

function importPath(from: string, file: string): string {
  let p = relative(from, file).replace(/\\/g, "/").replace(/\.ts$/, "");
  if (!p.startsWith(".")) p = `./${p}`;
  return p;
}

/** sdkConfig -- the package's asconfig.json: the SDK's settings, and the default config of every build. */
export function sdkConfig(): string {
  return join(packageRoot(), "asconfig.json");
}

/** projectConfig -- the asconfig.json a handler builds with: the nearest from its directory up to its project root, else the SDK's. */
export function projectConfig(srcDir: string): string {
  for (let dir = srcDir; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "asconfig.json"))) return join(dir, "asconfig.json");
    if (existsSync(join(dir, "package.json")) || dirname(dir) === dir) return sdkConfig();
  }
}

/** buildHandler -- compile an AssemblyScript handler to a .wasm the host loads; returns the output path. */
export async function buildHandler(entry: string, out: string, o: BuildOptions = {}): Promise<string> {
  const src = resolve(entry);
  const dst = resolve(out);
  if (!existsSync(src)) throw new BuildError(`no handler source at ${entry}`);
  mkdirSync(dirname(dst), { recursive: true });

  const work = mkdtempSync(join(tmpdir(), "paste-build-"));
  // The generated entry seems to sit beside the handler, so asc names the
  // handler's files as the author knows them, in diagnostics and in the
  // file/line an abort reports; but it is only in asc's readFile below, never
  // on disk: nothing is written beside the source (a file watcher on the
  // handler's directory sees no build).
  const srcDir = dirname(src);
  const entryName = ".paste-entry.ts";
  const entryFile = join(srcDir, entryName);
  const entryText = `export * from "${importPath(srcDir, src)}";\nexport { paste_abi_version, paste_end } from "paste-host/assembly/abi";\n`;
  const readFile = (name: string, baseDir: string): string | null => {
    const file = resolve(baseDir, name);
    if (file === entryFile) return entryText;
    try {
      const text = readFileSync(file, "utf8");
      o.onRead?.(file);
      return text;
    } catch {
      return null;   // asc tries several paths for each import
    }
  };
  try {
    // `import ... from "paste-host/assembly"` resolves through this when the
    // handler's own project has no node_modules/paste-host.
    mkdirSync(join(work, "node_modules"));
    symlinkSync(packageRoot(), join(work, "node_modules", "paste-host"), "dir");
    const args = [
      entryName, "--baseDir", srcDir, "-o", relative(srcDir, dst),
      "--config", projectConfig(srcDir), "--target", o.debug ? "debug" : "release",
      ...ASC_FLAGS,
      ...(o.optimize === false ? ["--optimizeLevel", "0"] : []),
      "--path", join(work, "node_modules"),
    ];
    const asc = (await import("assemblyscript/asc")).default;
    let diagnostics = "";
    const sink = { write: (s: string | Uint8Array) => { diagnostics += typeof s === "string" ? s : Buffer.from(s).toString(); return true; } };
    const { error } = await asc.main(args, { stdout: sink as never, stderr: sink as never, readFile, transforms: [await abortSites() as never] });
    if (error) {
      throw new BuildError(`asc could not compile ${entry}:\n${diagnostics.trim() || error.message}`);
    }
    return dst;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
