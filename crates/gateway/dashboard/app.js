// The dashboard's shell: picks the page from the address (#/network, #/services/NAME, …),
// keeps one live stream of changes from the node (/api/changes) and tells the page what
// changed, and shows any failure in words instead of a blank page.

import { h, fill } from "./dom.js";
import * as network from "./pages/network.js";
import * as services from "./pages/services.js";
import * as service from "./pages/service.js";
import * as events from "./pages/events.js";
import * as node from "./pages/node.js";

// Tells boot.js that the modules loaded.
window.microDashboard = true;

const view = document.getElementById("view");
const problem = document.getElementById("problem");
const live = document.getElementById("live");

/** The current page: { update(what), unmount() }. */
let current = null;

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  switch (name) {
    case "":
    case "network": return ["network", network, {}];
    case "services":
      return rest.length && rest[0]
        ? ["services", service, { name: decodeURIComponent(rest[0]) }]
        : ["services", services, {}];
    case "events": return ["events", events, {}];
    case "node": return ["node", node, {}];
    default: return [null, null, { unknown: name }];
  }
}

function show() {
  current?.unmount?.();
  current = null;
  const [name, page, params] = route();
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!page) {
    fill(view, h("h1", {}, "Not found"),
      h("p", { class: "error", role: "alert" }, `The dashboard has no page "${params.unknown}". `,
        h("a", { href: "#/network" }, "Go to the network.")));
    return;
  }
  try {
    current = page.mount(view, params);
  } catch (e) {
    report(e);
  }
}

/** Shows an unexpected failure above the page, in words. */
function report(error) {
  problem.hidden = false;
  fill(problem, h("strong", {}, "Error: "), String(error?.message ?? error),
    " ", h("button", { type: "button", onclick: () => { problem.hidden = true; } }, "Dismiss"));
}

window.addEventListener("error", (e) => report(e.error ?? e.message));
window.addEventListener("unhandledrejection", (e) => report(e.reason));
window.addEventListener("hashchange", show);

/** The stream of changes: the page re-reads what it shows when the node says it changed. */
function connect() {
  const stream = new EventSource("/api/changes");
  const state = (s, text) => { live.dataset.state = s; live.textContent = text; };
  stream.addEventListener("hello", () => {
    // After a reconnection the node may have changed in between: re-read everything.
    state("live", "live");
    current?.update?.(["services", "providers", "peers"]);
  });
  stream.addEventListener("changed", (e) => {
    try {
      current?.update?.(JSON.parse(e.data).what ?? []);
    } catch (err) {
      report(err);
    }
  });
  stream.addEventListener("error", () => {
    state("down", "node unreachable: reconnecting…");
  });
}

show();
connect();
