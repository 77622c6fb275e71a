// Node: what this node uses of its machine, the calls and errors of every service version it
// runs, what its broker and peer layer counted, and what its governance decided.

import { api } from "../api.js";
import { h, fill, table, panel, section, bytes, duration, time, nodeId } from "../dom.js";

/** How often the counters are re-read while the page is open. */
const EVERY_MS = 2000;

export function mount(view) {
  let previous = null;
  const stats = panel(null, () => api("/api/node"), (n) => {
    const cpu = cpuShare(previous, n);
    previous = n;
    return render(n, cpu);
  });
  const governance = panel("Governance", async () => ({
    current: await api("/api/governance"),
    log: await api("/api/governance/log?limit=12"),
  }), renderGovernance);
  fill(view, h("h1", {}, "Node"), stats.el, governance.el);
  const refresh = () => {
    stats.refresh();
    governance.refresh();
  };
  const timer = setInterval(refresh, EVERY_MS);
  return {
    update: refresh,
    unmount() {
      clearInterval(timer);
    },
  };
}

function renderGovernance({ current: g, log }) {
  const d = g.decisions;
  return [
    h("p", { id: "governance" }, `Decided by governance ${g.name} ${g.version} (${g.origin === "embedded" ? "the default, embedded" : `from ${g.origin}`}). `,
      `${d.asked} question(s) asked, ${d.cached} answered from the cache, ${d.denied} denied, ${d.failed} failed (so denied), ${d.rate_limited} rate-limited.`),
    table(["At", "Question", "Subject", "Answer", "Reason", "Took"],
      log.map((e) => [
        time(e.at_ms),
        e.question,
        nodeId(e.subject),
        e.allow ? "allow" : "deny",
        e.reason,
        `${e.micros} µs`,
      ]),
      "No decisions yet."),
  ];
}

function seconds(millis) {
  return millis === null || millis === undefined ? "–" : `${(millis / 1000).toFixed(2)} s`;
}

/** CPU used between two readings, as a share of one core. */
function cpuShare(before, now) {
  if (!before || now.usage.cpu_user_ms === null) return null;
  const cpu = now.usage.cpu_user_ms + now.usage.cpu_system_ms
    - before.usage.cpu_user_ms - before.usage.cpu_system_ms;
  const wall = now.uptime_ms - before.uptime_ms;
  return wall > 0 ? (100 * cpu) / wall : null;
}

function render(n, cpu) {
  const u = n.usage;
  const rows = [
    ["Node", h("code", { class: "wrap" }, n.node)],
    ["Version", `micro ${n.version} (pid ${n.pid}, allocator ${n.allocator})`],
    ["Up for", duration(n.uptime_ms)],
    ["Memory (resident)", `${bytes(u.rss_bytes)} (peak ${bytes(u.peak_rss_bytes)})`],
    ["CPU", `${cpu === null ? "measuring…" : `${cpu.toFixed(1)} % of a core`} (in all: user ${seconds(u.cpu_user_ms)}, system ${seconds(u.cpu_system_ms)})`],
    ["Threads", String(u.threads ?? "–")],
    ["Open files", String(u.open_files ?? "–")],
    ["Store", `${bytes(u.store_bytes)} in ${n.data_dir}`],
    ["Calls running", String(n.load)],
  ];
  const calls = n.services.reduce((sum, s) => sum + s.calls, 0);
  const errors = n.services.reduce((sum, s) => sum + s.errors, 0);
  return [
    section("Resource use", h("dl", { id: "usage" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    section("Calls", h("p", {}, `${calls} call(s), ${errors} error(s) since the node started.`),
      table(["Service", "Version", "State", "Calls", "Errors", "Running", "Last error"],
        n.services.map((s) => [
          h("a", { href: `#/services/${encodeURIComponent(s.name)}` }, s.name),
          h("code", {}, s.version),
          s.serving ? "serving" : "superseded",
          String(s.calls), String(s.errors), String(s.in_flight),
          s.last_error ? `${time(s.last_error.at_ms)}: ${s.last_error.message}` : "–",
        ]),
        "No services run on this node.")),
    section("Events", h("p", {},
      `${n.broker.topics} topic(s), ${n.broker.subscribers} subscriber(s) here, ${n.broker.dropped} message(s) dropped for slow subscribers.`)),
    section("Peer layer", n.network
      ? h("dl", {}, Object.entries(n.network).flatMap(([k, v]) => [h("dt", {}, k.replaceAll("_", " ")), h("dd", {}, String(v))]))
      : h("p", {}, "This node runs without a network.")),
  ];
}
