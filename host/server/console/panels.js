// panels.js -- the page's text: status into the handler, "now", pool and
// event panels; a log page into the log table. Every value goes in through
// textContent, never as HTML: a handler name or a record's bytes are data.

const $ = (id) => document.getElementById(id);

/** put -- set an element's text. */
export function put(id, text) {
  $(id).textContent = text;
}

const num = (v) => (v === undefined || v === null ? "-" : Math.round(v).toLocaleString("en-US"));
const us = (v) => `${(v ?? 0).toFixed(1)} µs`;

/** bytes -- a size in binary units, as the CLI writes them. */
export function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m ${s % 60}s` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

function gauge(id, value, max, text) {
  const m = $(id);
  m.max = Math.max(1, max);
  m.value = value;
  put(`${id}-text`, text);
}

/** row -- a table row of text cells (the last may get a class). */
function row(cells, lastClass) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    td.textContent = String(c);
    if (lastClass && i === cells.length - 1) td.className = lastClass;
    tr.append(td);
  });
  return tr;
}

/** showStatus -- one /v1/status answer on the page. */
export function showStatus(s) {
  const h = s.handler;
  put("handler-name", h.name);
  put("handler-sha", h.sha256);
  put("handler-abi", String(h.abi));
  put("handler-since", `${h.deployedAt} (${h.size.toLocaleString("en-US")} bytes)`);
  put("host-line", `${s.listen} · pool ${s.pool}`);
  const r = s.rates;
  put("now-records", num(r ? r.recordsPerSec : s.recordsPerSec));
  put("now-commits", num(r?.commitsPerSec));
  put("now-replies", num(r?.repliesPerSec));
  put("now-latency", `${us(s.commit.p50Us)} / ${us(s.commit.p99Us)} / ${us(s.commit.maxUs)} (${s.commit.count} commits in the last report)`);
  put("now-conns", `${s.connections.open} open, ${s.connections.accepted} since start`);
  put("uptime", `${duration(s.uptimeS)} (since ${s.startedAt})`);
  put("persist", `${s.persist.mode} (${s.persist.reason}); flush ${s.flush}`);
  put("port-engine", s.portEngine ? `${s.portEngine.engine} (${s.portEngine.reason})` : "");
  const b = s.space.usage.buffers;
  gauge("g-free", b.free, b.total, `${b.free} of ${b.total}`);
  gauge("g-log", b.log + b.arriving, b.total, `${b.log} (+${b.arriving} for requests arriving)`);
  gauge("g-rings", b.rings, b.total, String(b.rings));
  gauge("g-logbytes", s.stats.logUsed, s.stats.logCapacity, `${bytes(s.stats.logUsed)} of ${bytes(s.stats.logCapacity)}`);
  const hist = $("history");
  hist.replaceChildren(...h.history.map((k, i) => {
    const li = document.createElement("li");
    li.textContent = `${k.name} · sha256 ${k.sha256.slice(0, 16)}… · since ${k.since}${i === h.history.length - 1 ? " (serving)" : ""}`;
    return li;
  }));
  // a rollback goes where the pool's history says (rollbackTo), which may be older than this process
  $("rollback-btn").disabled = h.rollbackTo === undefined ? h.history.length < 2 : h.rollbackTo === null;
  $("events").replaceChildren(...[...h.events].reverse().map((e) => row([e.at, e.kind, e.handler, e.message])));
}

/** showLog -- a /v1/log page in the table. */
export function showLog(page) {
  $("log-rows").replaceChildren(...page.records.map((r) => row([
    r.seq, r.len, r.extents.map((e) => `${e.buf}:${e.off}+${e.len}`).join(" "), r.crcOk ? "ok" : "MISMATCH", r.preview,
  ], "preview")));
  const first = page.records[0]?.seq, last = page.records.at(-1)?.seq;
  put("log-state", page.records.length ? `seq ${first} .. ${last}${page.next === null ? " (end of the log)" : ""}` : `no record from seq ${page.from} on`);
  $("log-next").disabled = page.next === null;
  $("log-next").dataset.from = page.next ?? "";
}
