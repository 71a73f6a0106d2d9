// The web console in a real browser (Debian's chromium, driven by
// playwright-core) against a real host serving kv-wal under redis-benchmark
// load: the token prompt, a refused token, the handler and the charts, a
// deploy and a refused one from the page, the log browser, a rollback; and a
// screenshot for the README (.test-results/console.png; with
// UPDATE_SCREENSHOT=1 also docs/console.png, so a test run never changes a
// tracked file unasked).
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Redis from "ioredis";
import type { Browser, Page } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import { buildVariant, haveFile, haveProgram, root, scratchDir, startServer, until, type Server } from "./helpers.js";

const KV = join(root, "samples", "kv-wal", "kv-wal.wasm");
const CHROMIUM = "/usr/bin/chromium";
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** text -- an element's text now. */
const text = (page: Page, id: string) => page.locator(`#${id}`).innerText();

/** waitText -- until the element's text matches (the page polls once a second). */
async function waitText(page: Page, id: string, re: RegExp, ms = 15_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const t = await text(page, id);
    if (re.test(t)) return t;
    if (Date.now() > end) throw new Error(`#${id} never matched ${re}; it says ${JSON.stringify(t)}`);
    await page.waitForTimeout(100);
  }
}

describe("web console", () => {
  it("asks for the token, refuses a wrong one, shows the host under load, deploys, refuses a bad module, browses the log", async (ctx) => {
    haveFile(CHROMIUM, "chromium", ctx);
    haveProgram("redis-benchmark", "redis-tools", ctx);
    const { chromium } = await import("playwright-core");
    const dir = scratchDir("shm");
    const pool = join(dir, "console.pool");
    const v2 = await buildVariant("kv-wal-v2", "samples/kv-wal/kv-wal.ts", [["paste_wal:kv-wal", "paste_wal:kv-wal-v2"]]);
    const bad = join(dir, "broken.wasm");
    writeFileSync(bad, "definitely not wasm");

    const s: Server = await startServer({ pool, handler: KV });
    cleanup.push(() => s.stop("SIGKILL"));
    await until(() => /admin API on http:\/\/127\.0\.0\.1:\d+/.test(s.output()));
    const url = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(s.output())![1];
    const token = readFileSync(`${pool}.token`, "utf8").trim();

    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"], headless: true });
    cleanup.push(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1400, height: 1250 } });
    const problems: string[] = [];   // CSP refusals and script errors show up here
    // (the refusals the test provokes, 401 and 400, are expected: the browser logs each)
    const provoked = /^Failed to load resource: the server responded with a status of (400|401) /;
    page.on("console", (m) => m.type() === "error" && !provoked.test(m.text()) && problems.push(m.text()));
    page.on("pageerror", (e) => problems.push(e.message));
    const dataCalls: string[] = [];
    page.on("request", (r) => new URL(r.url()).pathname.startsWith("/v1/") && dataCalls.push(r.url()));

    // no token: the prompt, and not one call for data
    const res = await page.goto(url);
    expect(res!.headers()["content-security-policy"]).toMatch(/default-src 'self'; script-src 'self';.*frame-ancestors 'none'/);
    expect(res!.headers()["x-content-type-options"]).toBe("nosniff");
    await page.locator("#token").waitFor({ state: "visible" });
    expect(await page.locator("#main").isHidden()).toBe(true);
    expect(await text(page, "handler-name")).toBe("");
    await page.waitForTimeout(1500);   // a page that polled without a token would have by now
    expect(dataCalls).toEqual([]);

    // a wrong token is refused, and the page stays shut
    await page.fill("#token", "not-the-token");
    await page.click("#login-form button");
    expect(await waitText(page, "login-error", /Refused/)).toMatch(/did not accept that token/);
    expect(await page.locator("#main").isHidden()).toBe(true);
    expect(await text(page, "handler-name")).toBe("");

    // the right one: the handler appears, and under load the records/s chart rises above zero
    await page.fill("#token", token);
    await page.click("#login-form button");
    await waitText(page, "handler-name", /kv-wal\.wasm$/);
    expect(await text(page, "handler-sha")).toBe(sha256(KV));
    expect(await text(page, "port-engine")).toMatch(/^(io_uring|epoll) \(/);   // which engine serves, and why
    const bench: ChildProcess = spawn("redis-benchmark", ["-p", String(s.port), "-t", "set", "-n", "50000000", "-r", "10000", "-P", "8", "-q"], { stdio: "ignore" });
    cleanup.push(() => void (bench.exitCode === null && bench.kill("SIGKILL")));
    const chart = page.locator("#chart-rates");
    for (const end = Date.now() + 20_000; Number(await chart.getAttribute("data-max-records-per-sec")) <= 0;) {
      if (Date.now() > end) throw new Error(`the records/s chart never rose above 0: ${await chart.getAttribute("data-max-records-per-sec")}`);
      await page.waitForTimeout(200);
    }
    await waitText(page, "now-records", /^[1-9][\d,]*$/);
    await waitText(page, "now-conns", /^[1-9]\d* open/);
    // a few seconds of load in the charts for the screenshot (nothing is asserted on how many)
    for (const end = Date.now() + 8000; Number(await chart.getAttribute("data-points")) < 8 && Date.now() < end;) await page.waitForTimeout(250);
    await page.click("#log-newest");
    await waitText(page, "log-state", /^seq \d+/);
    mkdirSync(join(root, ".test-results"), { recursive: true });
    const shot = join(root, ".test-results", "console.png");
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.UPDATE_SCREENSHOT === "1") copyFileSync(shot, join(root, "docs", "console.png"));
    bench.kill("SIGKILL");
    // The load left the pool under pressure, and kv-wal's cleaner moves live
    // SETs to the log's tail until it is not: wait for that, or its moves
    // would push the SET written below off the newest page.
    for (const end = Date.now() + 30_000; ;) {
      const st = await (await fetch(`${url}/v1/status`, { headers: { Authorization: `Bearer ${token}` } })).json();
      if (st.space.pressure.length === 0) break;
      if (Date.now() > end) throw new Error(`the pool stayed under pressure after the load: ${st.space.pressure.join(", ")}`);
      await new Promise((res) => setTimeout(res, 200));
    }

    // a deploy from the page: the second build takes over
    await page.setInputFiles("#deploy-file", v2);
    await page.click("#deploy-btn");
    expect(await waitText(page, "deploy-result", /^deployed|^\d{3} /, 60_000)).toMatch(/^deployed kv-wal-v2-\w+\.wasm .*replacing .*kv-wal\.wasm\nreplayed \d+ records; data path paused \d+ ms/);
    await waitText(page, "handler-name", /^kv-wal-v2-\w+\.wasm$/);
    expect(await text(page, "handler-sha")).toBe(sha256(v2));

    // a bad module: its validation message, and the old handler serves on
    await page.setInputFiles("#deploy-file", bad);
    await page.click("#deploy-btn");
    expect(await waitText(page, "deploy-result", /^\d{3} /)).toMatch(/^400 PASTE_ERR_HANDLER_INVALID: .*not a WebAssembly module/);
    expect(await text(page, "handler-name")).toMatch(/^kv-wal-v2-\w+\.wasm$/);
    const r = new Redis({ port: s.port, host: "127.0.0.1" });
    cleanup.push(() => r.disconnect());
    const key = `console-${process.pid}-${Date.now()}`;
    expect(await r.set(key, "written-from-the-test")).toBe("OK");
    expect(await r.get(key)).toBe("written-from-the-test");

    // the log browser: the newest page holds that SET, checksum verified
    const end = Date.now() + 15_000;
    for (;;) {
      await page.click("#log-newest");
      await page.waitForTimeout(300);
      if ((await text(page, "log-rows")).includes(key)) break;
      if (Date.now() > end) throw new Error(`the log browser never showed ${key}: ${await text(page, "log-state")}`);
    }
    const row = page.locator("#log-rows tr", { hasText: key });
    expect(await row.locator("td").nth(3).innerText()).toBe("ok");
    // ioredis sends the command name in lower case; the preview escapes CR and LF
    expect((await row.locator("td").nth(4).innerText()).toLowerCase()).toContain(`$3\\r\\nset\\r\\n$${key.length}\\r\\n${key}`);

    // roll back: the first handler serves again
    await page.click("#rollback-btn");
    expect(await waitText(page, "deploy-result", /^rolled back|^\d{3} /, 60_000)).toMatch(/^rolled back to .*kv-wal\.wasm /);
    await waitText(page, "handler-name", new RegExp(`^${KV.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`));
    expect(await r.get(key)).toBe("written-from-the-test");   // replayed into the handler rolled back to
    expect(problems).toEqual([]);
  }, 180_000);
});
