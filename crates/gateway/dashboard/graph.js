// The peer graph as an SVG picture: every node the node knows, the links between them with
// their round-trip times. This node has a double ring; a node that stopped answering is drawn
// dashed and labelled "down" (readable without colour) until its record expires.

import { short, us } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640;
/** Two nodes need less height than a ring of them. */
const height = (n) => (n <= 2 ? 220 : 420);
const R = 24;
/** Most nodes whose links are labelled with their round-trip times. */
const LABELLED = 8;

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Where each node goes: on a circle, this node first (on the left), then by id. */
function layout(nodes) {
  const H = height(nodes.length);
  const sorted = [...nodes].sort((a, b) => (b.self - a.self) || a.node.localeCompare(b.node));
  const place = new Map();
  if (sorted.length === 1) {
    place.set(sorted[0].node, [W / 2, H / 2]);
    return { sorted, place };
  }
  // An ellipse that fills the picture, leaving room for the labels under each node.
  const rx = W / 2 - R - 70;
  const ry = H / 2 - R - 30;
  sorted.forEach((n, i) => {
    const angle = Math.PI + (2 * Math.PI * i) / sorted.length;
    place.set(n.node, [W / 2 + rx * Math.cos(angle), H / 2 - 10 + ry * Math.sin(angle)]);
  });
  return { sorted, place };
}

/** One line per pair of nodes, with the lower of the two round-trip times they report. */
function pairs(links, place) {
  const byPair = new Map();
  for (const l of links) {
    if (!place.has(l.from) || !place.has(l.to) || l.from === l.to) continue;
    const key = [l.from, l.to].sort().join(" ");
    const old = byPair.get(key);
    if (!old || l.rtt_us < old.rtt_us) byPair.set(key, { ...l });
  }
  return [...byPair.values()];
}

/** Draws `graph` ({nodes, links} from /api/network/graph) as an <svg>. */
export function drawGraph(graph) {
  const svg = el("svg", {
    viewBox: `0 0 ${W} ${height(graph.nodes.length)}`, class: "graph", role: "img",
    "aria-label": `Peer graph: ${graph.nodes.length} node(s), ${graph.links.length} link(s)`,
  });
  const { sorted, place } = layout(graph.nodes);
  const health = new Map(graph.nodes.map((n) => [n.node, n.healthy !== false]));
  const linkLayer = el("g", { class: "links" });
  for (const l of pairs(graph.links, place)) {
    const [x1, y1] = place.get(l.from);
    const [x2, y2] = place.get(l.to);
    const down = !health.get(l.from) || !health.get(l.to);
    const g = el("g", { class: down ? "link down" : "link", "data-from": l.from, "data-to": l.to });
    g.append(el("title", {}, `${short(l.from)} – ${short(l.to)}: ${us(l.rtt_us)}${down ? " (down)" : ""}`));
    g.append(el("line", { x1, y1, x2, y2 }));
    // Past a handful of nodes the labels would cover each other: the time is in the title.
    if (sorted.length <= LABELLED) {
      g.append(el("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, "text-anchor": "middle", class: "rtt" }, us(l.rtt_us)));
    }
    linkLayer.append(g);
  }
  svg.append(linkLayer);
  for (const n of sorted) {
    const [x, y] = place.get(n.node);
    const up = n.healthy !== false;
    const g = el("g", {
      class: `node${n.self ? " self" : ""}${up ? "" : " down"}`,
      "data-node": n.node,
      transform: `translate(${x} ${y})`,
    });
    g.append(el("title", {}, `${n.node}${n.self ? " (this node)" : ""}${up ? "" : " (down)"}`));
    if (n.self) g.append(el("circle", { r: R + 5, class: "ring" }));
    g.append(el("circle", { r: R }));
    g.append(el("text", { y: 4, "text-anchor": "middle", class: "initials" }, short(n.node).slice(0, 4)));
    g.append(el("text", { y: R + 18, "text-anchor": "middle" }, short(n.node)));
    const note = n.self ? "this node" : up ? null : "down";
    if (note) g.append(el("text", { y: R + 34, "text-anchor": "middle", class: "note" }, note));
    svg.append(g);
  }
  return svg;
}
