// Services: every service the node knows, here or elsewhere in the network — where it runs,
// which versions serve, its methods.

import { api } from "../api.js";
import { h, fill, table, panel, nodeId } from "../dom.js";

export function mount(view) {
  const list = panel(null, () => api("/api/network/services"), render);
  fill(view, h("h1", {}, "Services"), list.el);
  return {
    update(what) {
      if (what.includes("services") || what.includes("records")) list.refresh();
    },
  };
}

function render(services) {
  return [
    h("p", { class: "muted" }, `${services.length} service(s) in the network. Deploy one with `,
      h("code", {}, "micro run <source>"), "; it appears here by itself."),
    table(
      ["Service", "Runs on", "Versions", "Methods"],
      services.map((s) => {
        const nodes = [...s.nodes].sort((a, b) => (b.local - a.local) || a.node.localeCompare(b.node));
        const serving = new Set(nodes.filter((n) => n.serving !== false).map((n) => n.version));
        const others = new Set(nodes.filter((n) => n.serving === false).map((n) => n.version));
        const methods = new Set(nodes.flatMap((n) => n.methods ?? []));
        return [
          h("a", { href: `#/services/${encodeURIComponent(s.name)}`, class: "service-link" }, s.name),
          h("span", {}, [...new Map(nodes.map((n) => [n.node, n])).values()]
            .map((n, i) => [i ? ", " : "", nodeId(n.node, n.local)])),
          [
            ...[...serving].map((v) => h("span", { class: "version" }, `${v} serving`)),
            ...[...others].filter((v) => !serving.has(v))
              .map((v) => h("span", { class: "version" }, `${v} superseded`)),
          ],
          [...methods].join(", ") || "HTTP",
        ].map((c) => (Array.isArray(c) ? h("span", {}, c) : c));
      }),
      "No services yet.",
    ),
  ];
}
