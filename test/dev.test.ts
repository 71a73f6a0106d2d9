// `paste-host dev`: edit the source and the served behaviour changes, on the
// same connection; a build that fails leaves the last good one serving, with
// asc's error (file and line) printed.
import { spawn } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "../host/server/spawn.js";
import { cliPath, root, scratchDir, until } from "./helpers.js";

/** LineClient -- one connection to the line log; ask() sends a line and waits for its reply line. */
class LineClient {
  #buf = "";
  closed = false;
  constructor(readonly s: Socket) {
    s.on("data", (d) => (this.#buf += d.toString("latin1")));
    s.on("close", () => (this.closed = true));
  }

  static open(port: number): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => resolve(new LineClient(s)));
      s.on("error", reject);
    });
  }

  async ask(line: string): Promise<string> {
    this.s.write(`${line}\n`);
    await until(() => this.#buf.includes("\n"));
    const eol = this.#buf.indexOf("\n");
    const reply = this.#buf.slice(0, eol);
    this.#buf = this.#buf.slice(eol + 1);
    return reply;
  }
}

describe("paste-host dev", () => {
  it("a save rebuilds and deploys without dropping the connection; a syntax error keeps the last good build serving", async () => {
    const dir = scratchDir("shm");
    const src = join(dir, "handler.ts");
    cpSync(join(root, "samples", "templates", "blank", "handler.ts"), src);
    const port = await freePort();
    const child = spawn(process.execPath, [cliPath, "dev", src, "--pool", join(dir, "dev.pool"), "--listen", `tcp://127.0.0.1:${port}`,
      "--create-size", "16M"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    let client: LineClient | null = null;
    try {
      await until(() => out.includes("save to rebuild and deploy"), 60_000);
      client = await LineClient.open(port);
      expect(await client.ask("one")).toBe("1 1");

      const v1 = readFileSync(src, "utf8");
      writeFileSync(src, v1.replace('.u64(seq).ascii(" ").u64(lines)', '.ascii("v2 ").u64(seq).ascii(" ").u64(lines)'));
      await until(() => out.includes("deployed build 2"), 60_000);
      expect(await client.ask("two")).toBe("v2 2 2");            // the same connection, the new build, the state replayed

      writeFileSync(src, v1.replace("export function on_rx(ring: Ring): void {", "export function on_rx(ring: Ring): void { let = ;"));
      await until(() => out.includes("build 3 not deployed, still serving build 2"), 60_000);
      expect(out).toMatch(/handler\.ts\(\d+,\d+\)/);                 // asc's error names the file and line
      expect(await client.ask("three")).toBe("v2 3 3");
      expect(client.closed).toBe(false);

      child.kill("SIGINT");
      expect(await exited).toBe(0);
    } finally {
      client?.s.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  }, 180_000);
});
