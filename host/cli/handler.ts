// handler.ts -- the handler author's commands: `init`, `build`, `validate`, `deploy`.

import { Command, Option } from "commander";
import { buildHandler } from "../core/build.js";
import { HandlerInvalidError } from "../core/errors.js";
import { inspectHandler } from "../core/validate.js";
import { initProject, TEMPLATES, type TemplateName } from "../tools/scaffold.js";
import { deployHandler, formatConfig, formatDeploy } from "../tools/status.js";
import { rollbackHandler } from "../tools/rollback.js";
import { devLoop } from "../tools/dev.js";
import { parseSize } from "../core/size.js";
import { optionParser } from "./options.js";

export function dev(parent: Command): void {
  parent
    .command("dev")
    .description("build, serve on a local pool, and rebuild and deploy on every save of the source (or a file it imports); " +
      "a build that fails is printed and the last good one keeps serving")
    .argument("<handler.ts>", "the handler's entry file")
    .option("--pool <path>", "pool file (created if missing)", "data/dev.pool")
    .option("--listen <url>", "address to serve, tcp://HOST:PORT", "tcp://127.0.0.1:6380")
    .option("--create-size <size>", "create the pool with this size if it does not exist", optionParser((t) => parseSize(t, "--create-size")), 64 << 20)
    .option("--handler-config <file>", "the handler's config (what it reads in on_init), read again for every build it deploys")
    .action(async (entry: string, o: { pool: string; listen: string; createSize: number; handlerConfig?: string }) => {
      const code = await devLoop(entry, { pool: o.pool, listen: o.listen, createSize: o.createSize, handlerConfig: o.handlerConfig });
      if (code) process.exitCode = code;
    });
}

export function init(parent: Command): void {
  parent
    .command("init")
    .description("make a handler project: package.json, asconfig.json, tsconfig.json, the handler, its tests, a README")
    .argument("<dir>", "the new project's directory (missing or empty)")
    .addOption(new Option("--template <name>", "what the handler starts as").choices(Object.keys(TEMPLATES)).default("blank"))
    .option("--paste-host-spec <spec>", "the paste-host dependency, as npm takes it (default: ^ this version; file:PATH.tgz for a packed one)")
    .action((dir: string, o: { template: TemplateName; pasteHostSpec?: string }) => {
      const files = initProject(dir, { template: o.template, pasteHostSpec: o.pasteHostSpec });
      console.log(`made ${dir} from the ${o.template} template: ${files.join(", ")}`);
      console.log(`next: cd ${dir} && npm install && npm test`);
    });
}

export function build(parent: Command): void {
  parent
    .command("build")
    .description("compile an AssemblyScript handler with the SDK's settings (imported memory above the window, ABI export)")
    .argument("<handler.ts>", "the handler's entry file")
    .requiredOption("-o, --out <file.wasm>", "where to write the module")
    .option("--no-optimize", "skip -O3 (faster builds while developing)")
    .option("--debug", "keep debug names and write a source map", false)
    .action(async (entry: string, o) => {
      const t0 = Date.now();
      const out = await buildHandler(entry, o.out, { optimize: o.optimize, debug: o.debug });
      const { statSync } = await import("node:fs");
      console.log(`built ${out} (${statSync(out).size} bytes) in ${Date.now() - t0} ms`);
    });
}

export function validate(parent: Command): void {
  parent
    .command("validate")
    .description("check that a .wasm is a handler this host can run: size, format, memory layout, imports, exports, ABI")
    .argument("<handler.wasm>", "the module to check")
    .option("--json", "print what was found as JSON", false)
    .action(async (file: string, o) => {
      const { readFileSync } = await import("node:fs");
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (e) {
        throw new HandlerInvalidError(`cannot read ${file}: ${(e as Error).message}`);
      }
      const { info } = inspectHandler(bytes, file);
      if (o.json) console.log(JSON.stringify(info, null, 2));
      else {
        console.log(`${file}: a valid handler, ABI ${info.abi}, ${info.size} bytes, sha256 ${info.sha256}`);
        console.log(`  exports: ${info.exports.filter((e) => !e.startsWith("__")).join(", ")}`);
        console.log(`  imports: ${info.imports.join(", ")}`);
        console.log(`  memory: imports env.memory (at least ${info.memoryMinPages} pages), static data from 0x${(info.dataStart ?? 0).toString(16)}`);
      }
    });
}

export function deploy(parent: Command): void {
  parent
    .command("deploy")
    .description("swap the handler of a running host: validated first, replayed the live log, then takes over between two batches")
    .argument("<handler>", "the module to deploy (.wasm), or an AssemblyScript handler (.ts) to build first")
    .option("--config <file>", "the handler's config, which it reads in on_init (at most 1 MiB); without it the handler has none")
    .option("--pool <path>", "the host's pool: finds the admin address and token next to it")
    .option("--admin <url>", "admin API URL (default: from POOL.admin)")
    .option("--token-file <file>", "bearer token file (default: POOL.token)")
    .option("--json", "print the result as JSON", false)
    .action(async (file: string, o) => {
      let wasm = file;
      let scratch: string | null = null;
      if (file.endsWith(".ts")) {
        // build with the same settings as `paste-host build`, into a scratch directory
        const { mkdtempSync, rmSync } = await import("node:fs");
        const { tmpdir } = await import("node:os");
        const { basename, join } = await import("node:path");
        scratch = mkdtempSync(join(tmpdir(), "paste-deploy-"));
        wasm = join(scratch, basename(file).replace(/\.ts$/, ".wasm"));
        try {
          await buildHandler(file, wasm);
          if (!o.json) console.error(`built ${file}`);
        } catch (e) {
          rmSync(scratch, { recursive: true, force: true });
          throw e;
        }
      }
      try {
        const r = await deployHandler(wasm, o);
        console.log(o.json ? JSON.stringify(r, null, 2) : formatDeploy(r));
      } finally {
        if (scratch) (await import("node:fs")).rmSync(scratch, { recursive: true, force: true });
      }
    });
}

/**
 * rollback -- `paste-host rollback`, and the same command as `paste-host
 * handlers rollback` (an alias): one code path, tools/rollback.ts.
 */
export function rollback(parent: Command, alias = false): void {
  parent
    .command("rollback")
    .description(!alias
      ? "serve the handler (and config) that served before the current one: deployed if a host serves the pool, else started by the next run"
      : "serve the handler (and config) that served before the current one; the same command as paste-host rollback (an alias)")
    .option("--pool <path>", "the pool: finds a running host's admin address and token next to it; a stopped pool is rolled back in place")
    .option("--admin <url>", "admin API URL of the running host (default: from POOL.admin)")
    .option("--token-file <file>", "bearer token file (default: POOL.token)")
    .option("--json", "print the result as JSON", false)
    .action(async (o: { pool?: string; admin?: string; tokenFile?: string; json: boolean }) => {
      const r = await rollbackHandler({ pool: o.pool, admin: o.admin, tokenFile: o.tokenFile });
      if (o.json) console.log(JSON.stringify(r.deployed ?? { rolledBack: true, next: r.to }, null, 2));
      else if (r.deployed) console.log(formatDeploy(r.deployed));
      else console.log(`rolled back to ${r.to.name} (sha256 ${r.to.sha256.slice(0, 16)}...; config ${formatConfig(r.to.config)}): ` +
        `the next paste-host run --pool ${o.pool} (without --handler) serves it`);
    });
}
