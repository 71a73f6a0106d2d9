// app.js -- the console: ask for the token, then poll the host once a
// second (/v1/status and the new /v1/series points) and drive the panels.
// Polling, not server-sent events: EventSource cannot send an Authorization
// header, and the token must not travel in a URL or a cookie.

import { Refused, call, clearToken, setToken, token } from "./api.js";
import { Charts } from "./charts.js";
import { put, showLog, showStatus } from "./panels.js";

const $ = (id) => document.getElementById(id);
let charts = null;
let lastT = 0;
let timer = 0;
let latest = null;

/** askForToken -- the login form, with why it is shown again (a refusal). */
function askForToken(why) {
  clearTimeout(timer);
  clearToken();
  $("main").hidden = true;
  $("login").hidden = false;
  put("login-error", why ?? "");
  $("token").value = "";
  $("token").focus();
}

/** failed -- any call's failure: a refused token asks for it again, anything else is shown and retried. */
function failed(e) {
  if (e instanceof Refused) return askForToken(`Refused: the host did not accept that token (${e.message}).`);
  put("conn-state", `cannot reach the host: ${e.message}`);
  $("conn-state").className = "error";
}

async function tick() {
  try {
    const [st, se] = await Promise.all([call("/v1/status"), call(`/v1/series?after=${lastT}`)]);
    if (st.ok) {
      const first = latest === null;
      latest = st.body;
      showStatus(st.body);
      if (first) showNewest();   // the page opens on the records just written
      put("conn-state", `updated ${new Date().toLocaleTimeString()}`);
      $("conn-state").className = "muted";
    } else {
      put("conn-state", `host says ${st.status}: ${st.body?.error ?? ""}`);
    }
    if (se.ok && se.body.points.length) {
      charts.add(se.body.points);
      lastT = se.body.points.at(-1).t;
    }
  } catch (e) {
    failed(e);
    if (e instanceof Refused) return;
  }
  timer = setTimeout(tick, 1000);
}

/** start -- the token was accepted: show the page and poll. */
function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  charts ??= new Charts();
  clearTimeout(timer);
  tick();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  setToken($("token").value.trim());
  try {
    await call("/v1/status");   // 503 while starting still means the token is right
    start();
  } catch (e) {
    failed(e);
  }
});

/** deployResult -- what a deploy or rollback answered, in words. */
function deployResult(r) {
  if (!r.ok) return `${r.status} ${r.body?.error ?? ""}: ${r.body?.message ?? ""}`;
  const d = r.body;
  return `${d.rolledBack ? "rolled back to" : "deployed"} ${d.handler.name} (sha256 ${d.handler.sha256.slice(0, 16)}…) replacing ${d.previous.name}\n` +
    `replayed ${d.replayed} records; data path paused ${d.pauseMs} ms (compiled in ${d.prepareMs} ms, waited ${d.waitMs} ms while serving)`;
}

async function deployCall(path, init) {
  const out = $("deploy-result");
  out.className = "";
  out.textContent = path.endsWith("rollback") ? "rolling back…" : "deploying…";
  try {
    const r = await call(path, { method: "POST", ...init });
    out.textContent = deployResult(r);
    out.className = r.ok ? "ok" : "error";
    tick();
  } catch (e) {
    failed(e);
  }
}

$("deploy-btn").addEventListener("click", async () => {
  const f = $("deploy-file").files[0];
  if (!f) {
    $("deploy-result").textContent = "pick a .wasm file first";
    return;
  }
  await deployCall("/v1/handler", { body: await f.arrayBuffer(), headers: { "Content-Type": "application/wasm", "X-Handler-Name": f.name } });
});
$("rollback-btn").addEventListener("click", () => deployCall("/v1/handler/rollback", {}));

let logAsked = 0;

async function logFrom(from) {
  const limit = Number($("log-limit").value) || 25;
  $("log-from").value = String(from);
  const ask = ++logAsked;
  try {
    const r = await call(`/v1/log?from=${from}&limit=${limit}`);
    if (ask !== logAsked) return;   // a later page was asked for meanwhile: it wins
    if (r.ok) showLog(r.body);
    else put("log-state", `${r.status} ${r.body?.error ?? ""}: ${r.body?.message ?? ""}`);
  } catch (e) {
    failed(e);
  }
}

$("log-go").addEventListener("click", () => logFrom(Number($("log-from").value) || 0));
$("log-next").addEventListener("click", () => logFrom(Number($("log-next").dataset.from)));
/** showNewest -- the last page of the log, as of the latest status. */
function showNewest() {
  const limit = Number($("log-limit").value) || 25;
  logFrom(Math.max(0, (latest?.stats.committedSeq ?? 0) - limit + 1));
}
$("log-newest").addEventListener("click", showNewest);

if (token()) start();
else askForToken();
