// console.ts -- the web console's files, served by the admin API at / and
// /console/*, and the headers every admin response carries.
//
// The page is plain HTML and ES modules (host/server/console/, shipped in the
// package as they are: no build step) plus uPlot's own dist files, found in
// node_modules where the package manager put them. The files hold no data:
// they are served without the token; every call the page makes for data
// carries it.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { ServerResponse } from "node:http";
import { packageRoot } from "../core/native.js";

/** The page may load its own scripts, styles and images and talk to its own origin; nothing inline, no frames. */
export const PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/** An API answer is data, never a document to render or frame. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
};

/** URL path -> where its file is: the page's own (beside this module's source), and uPlot's (resolved when first asked for). */
const ASSETS: Record<string, () => string> = {
  "/": () => own("index.html"),
  "/console/app.js": () => own("app.js"),
  "/console/api.js": () => own("api.js"),
  "/console/charts.js": () => own("charts.js"),
  "/console/panels.js": () => own("panels.js"),
  "/console/style.css": () => own("style.css"),
  "/console/uPlot.esm.js": () => createRequire(import.meta.url).resolve("uplot/dist/uPlot.esm.js"),
  "/console/uPlot.min.css": () => createRequire(import.meta.url).resolve("uplot/dist/uPlot.min.css"),
};

/** own -- a file of the page: host/server/console/ in the package (tsc copies nothing, so not under dist/). */
function own(name: string): string {
  return join(packageRoot(), "host", "server", "console", name);
}

/** The paths the console answers (GET only), for the route table. */
export const CONSOLE_PATHS = Object.keys(ASSETS);

const cache = new Map<string, { body: Buffer; type: string }>();

/** consoleAsset -- the file for a console path (read once, kept), or null. */
export function consoleAsset(path: string): { body: Buffer; type: string } | null {
  const where = ASSETS[path];
  if (!where) return null;
  let hit = cache.get(path);
  if (!hit) {
    const file = where();
    hit = { body: readFileSync(file), type: TYPES[file.slice(file.lastIndexOf("."))] ?? "application/octet-stream" };
    cache.set(path, hit);
  }
  return hit;
}

/** secure -- what every admin response says: no sniffing, no framing, no referrer; the page's CSP or the API's. */
export function secure(res: ServerResponse, page: boolean): void {
  res.setHeader("Content-Security-Policy", page ? PAGE_CSP : API_CSP);
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("X-Frame-Options", "DENY");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
  res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
  res.setHeader("Cache-Control", "no-store");
}

/**
 * foreignOrigin -- a request a browser sent on behalf of another site. The
 * bearer header alone already keeps a cross-site page from calling the API
 * (it cannot set Authorization without a CORS preflight, which this API never
 * grants); refusing a foreign Origin or Sec-Fetch-Site says so plainly and
 * holds even if a token leaked into a page. Tools like curl send neither.
 */
export function foreignOrigin(headers: { origin?: string; host?: string; "sec-fetch-site"?: string | string[] }): string | null {
  const site = headers["sec-fetch-site"];
  if (site === "cross-site" || site === "same-site") return `Sec-Fetch-Site: ${site}`;
  const origin = headers.origin;
  if (origin === undefined) return null;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return `Origin: ${origin}`;
  }
  return host === headers.host ? null : `Origin: ${origin}`;
}
