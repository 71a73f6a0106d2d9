// upload.ts -- the body of POST /v1/handler: what to deploy. Two forms:
//
//   Content-Type: application/wasm (or anything but multipart): the body is
//     the module; it is deployed with no config. X-Handler-Name names it.
//   Content-Type: multipart/form-data: a part "module" (the .wasm) and an
//     optional part "config" (the handler's config, a file or a text field):
//     curl -F module=@h.wasm -F config=@h.conf. The name is X-Handler-Name,
//     else the module part's file name.
//
// Multipart rather than a header or a query parameter: a config may be up
// to 1 MiB of any bytes, which neither carries, and it is what curl -F and
// a browser's FormData send. Sizes are bounded before anything is held: a
// declared length over the limit is refused before a byte is read, and an
// undeclared one is read to one byte past it at most.

import type { IncomingMessage } from "node:http";
import { MAX_CONFIG_BYTES } from "../core/config.js";
import { MAX_HANDLER_BYTES } from "../core/validate.js";

/** What a deploy carries, or the refusal to answer with (HTTP status, error code, message). */
export type Upload =
  | { ok: true; bytes: Uint8Array; name: string; config: Uint8Array }
  | { ok: false; status: number; error: string; message: string };

/** Room for a multipart body's boundaries and part headers beside the two parts. */
const MULTIPART_SLACK = 64 << 10;
const MiB = (n: number) => `${n / (1 << 20)} MiB`;
const keeps = "; the old handler keeps serving";

const moduleTooLarge = (): Upload => ({ ok: false, status: 413, error: "PASTE_ERR_HANDLER_INVALID",
  message: `the module is larger than the ${MiB(MAX_HANDLER_BYTES)} limit for a handler${keeps}` });

/** readBody -- the body, or null if it is longer than limit (the rest is drained, so the client still gets an answer). */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  if (Number(req.headers["content-length"] ?? 0) > limit) {
    req.resume();
    return null;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) {
      req.resume();
      return null;
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** readUpload -- the module, its name and its config from a deploy's request. */
export async function readUpload(req: IncomingMessage): Promise<Upload> {
  const type = String(req.headers["content-type"] ?? "");
  const header = req.headers["x-handler-name"];
  const named = header === undefined ? null : String(header).slice(0, 200);
  if (!/^multipart\/form-data\s*;/i.test(type)) {
    const body = await readBody(req, MAX_HANDLER_BYTES);
    if (!body) return moduleTooLarge();
    return { ok: true, bytes: new Uint8Array(body), name: named ?? "deployed.wasm", config: new Uint8Array(0) };
  }
  const body = await readBody(req, MAX_HANDLER_BYTES + MAX_CONFIG_BYTES + MULTIPART_SLACK);
  if (!body) {
    return { ok: false, status: 413, error: "PASTE_ERR_HANDLER_INVALID", message: `the upload is larger than a module ` +
      `(${MiB(MAX_HANDLER_BYTES)} at most) and its config (${MiB(MAX_CONFIG_BYTES)} at most) together${keeps}` };
  }
  let form: FormData;
  try {
    form = await new Request("http://admin/", { method: "POST", headers: { "content-type": type }, body: new Uint8Array(body) }).formData();
  } catch (e) {
    return { ok: false, status: 400, error: "PASTE_ERR_USAGE", message: `the multipart body cannot be read: ${(e as Error).message}` };
  }
  const mod = form.get("module");
  if (!(mod instanceof Blob)) {
    return { ok: false, status: 400, error: "PASTE_ERR_HANDLER_INVALID",
      message: `a multipart deploy needs a file part named "module" (curl -F module=@handler.wasm)${keeps}` };
  }
  if (mod.size > MAX_HANDLER_BYTES) return moduleTooLarge();
  const part = form.get("config");
  const config = part === null ? new Uint8Array(0) : part instanceof Blob ? new Uint8Array(await part.arrayBuffer()) : Buffer.from(part);
  if (config.length > MAX_CONFIG_BYTES) {
    return { ok: false, status: 413, error: "PASTE_ERR_HANDLER_CONFIG",
      message: `the config is ${config.length} bytes, over the ${MiB(MAX_CONFIG_BYTES)} limit for a handler's config${keeps}` };
  }
  const fileName = (mod as Blob & { name?: string }).name;
  return { ok: true, bytes: new Uint8Array(await mod.arrayBuffer()), name: named ?? (fileName || "deployed.wasm").slice(0, 200), config };
}
