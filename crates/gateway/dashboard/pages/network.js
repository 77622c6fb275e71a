// Network: this node's identity and ticket, the peers it checks, and the nodes it knows — a
// local view of a network too large to list.

import { api } from "../api.js";
import { drawGraph } from "../graph.js";
import { h, fill, table, panel, nodeId, us } from "../dom.js";

export function mount(view) {
  const identity = panel("This node", () => api("/api/network"), renderIdentity);
  const graph = panel("Peer graph", () => api("/api/network/graph"), (g) => [
    drawGraph(g),
    h("p", { class: "legend" },
      "Double ring: this node. The others: the peers it checks. Dashed and marked “down”: a peer that stopped answering; it leaves the graph once forgotten. Labels on links: round-trip time."),
  ]);
  const nodes = panel("Nodes", () => api("/api/network/nodes"), renderNodes);
  fill(view, h("h1", {}, "Network"), identity.el, graph.el, nodes.el);
  return {
    update(what) {
      if (what.includes("providers") || what.includes("peers") || what.includes("services")) {
        graph.refresh();
        nodes.refresh();
      }
      if (what.includes("peers")) identity.refresh();
    },
  };
}

function renderIdentity(n) {
  if (!n.enabled) {
    return [
      h("dl", {}, h("dt", {}, "Node id"), h("dd", {}, h("code", { class: "wrap", id: "node-id" }, n.node))),
      h("p", {}, "This node runs without a network (network.enabled = false): it serves its own services only."),
    ];
  }
  const ticket = h("textarea", { readonly: true, rows: 3, id: "ticket", "aria-label": "Ticket" }, n.ticket);
  const copied = h("span", { role: "status", class: "muted" });
  const copy = h("button", {
    type: "button",
    onclick: async () => {
      ticket.select();
      try {
        await navigator.clipboard.writeText(n.ticket);
        copied.textContent = " copied";
      } catch {
        copied.textContent = " selected: copy it with your keyboard";
      }
    },
  }, "Copy ticket");
  return [
    h("dl", {},
      h("dt", {}, "Node id"), h("dd", {}, h("code", { class: "wrap", id: "node-id" }, n.node)),
      h("dt", {}, "Nodes known"), h("dd", {}, `${n.nodes} (this node's view: the peers it checks and its DHT contacts)`),
      h("dt", {}, "Peers"), h("dd", {}, `${n.peers} (${n.neighbours.length} gossip neighbours)`),
      h("dt", {}, "Listening on"), h("dd", {}, (n.addrs ?? []).join(", ") || "–"),
      h("dt", {}, "Discovery"), h("dd", {},
        `relays ${n.relays ? "on" : "off"}, public lookup ${n.public_lookup ? "on" : "off"}, mDNS ${n.mdns ? "on" : "off"}`)),
    h("p", {}, "Another node joins this one with ", h("code", {}, "micro server --peer <ticket>"), ":"),
    ticket,
    h("p", {}, copy, copied),
  ];
}

/** How this node came to know a node, in words. */
const SOURCES = {
  self: "this node",
  ticket: "joined through",
  mdns: "on this LAN",
  neighbour: "overlay neighbour",
  route: "routed to",
  dht: "DHT contact",
};

function renderNodes(list) {
  return table(
    ["Node", "Known as", "State", "RTT", "Load", "Services", "Reputation", "Governance"],
    list.map((n) => [
      nodeId(n.node, n.self),
      SOURCES[n.source] ?? n.source ?? "–",
      n.self ? "this node" : n.healthy == null ? "not checked" : n.healthy ? "up" : "down",
      n.self ? "–" : us(n.rtt_us),
      String(n.load ?? 0),
      (n.services ?? []).join(", ") || "–",
      typeof n.reputation === "number" ? n.reputation.toFixed(2) : "–",
      n.governance || "–",
    ]),
  );
}
