// Services: the services this node knows — its own and those it found elsewhere — where each
// runs, which versions serve, its methods; and a search that looks a name up in the network.

import { api } from "../api.js";
import { h, fill, table, panel, nodeId, errorBox } from "../dom.js";

export function mount(view) {
  const list = panel(null, () => api("/api/network/services"), render);
  fill(view, h("h1", {}, "Services"), findForm(), list.el);
  return {
    update(what) {
      if (what.includes("services") || what.includes("providers")) list.refresh();
    },
  };
}

/** Looks a name up in the network; what it finds joins the list below by itself. */
function findForm() {
  const name = h("input", { id: "find-name", type: "search", required: true, "aria-label": "Service name", placeholder: "service name" });
  const result = h("p", { id: "find-result", role: "status", class: "muted" });
  async function submit(event) {
    event.preventDefault();
    const wanted = name.value.trim();
    if (!wanted) return;
    fill(result, "Looking ", h("code", {}, wanted), " up…");
    try {
      const found = await api(`/api/network/services?service=${encodeURIComponent(wanted)}`);
      const nodes = found.flatMap((s) => s.nodes);
      fill(result, nodes.length === 0
        ? ["No node serves ", h("code", {}, wanted), "."]
        : [h("code", {}, wanted), ` runs on ${new Set(nodes.map((n) => n.node)).size} node(s).`]);
    } catch (e) {
      fill(result, errorBox(e));
    }
  }
  return h("form", { class: "find", onsubmit: submit },
    h("label", { for: "find-name" }, "Find a service in the network "), name, " ",
    h("button", { id: "find-button", type: "submit" }, "Find"), result);
}

function render(services) {
  return [
    h("p", { class: "muted" }, `${services.length} service(s) known to this node: its own and those it called or found (the network is too large to list). Deploy one with `,
      h("code", {}, "micro run <source>"), "."),
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
