// One service: where it runs and at what cost, its versions and their states, a form to call
// it (method, version, JSON body; the answer, its status and how long it took), and its WIT.

import { api, callService } from "../api.js";
import { h, fill, table, panel, nodeId, us, ms, duration, time, errorBox } from "../dom.js";

export function mount(view, { name }) {
  const path = encodeURIComponent(name);
  let localVersions = [];
  let routeVersions = [];
  const routes = panel("Where it runs", () => api(`/api/network/routes?service=${path}`), (answer) => {
    const list = answer?.[0]?.routes ?? [];
    routeVersions = list.map((r) => r.version).filter(Boolean);
    return renderRoutes(list);
  });
  const versions = panel("Versions on this node", async () => {
    try {
      return await api(`/api/services/${path}/versions`);
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  }, renderVersions);
  const form = h("div", { class: "panel" }, h("p", { class: "loading" }, "Loading…"));
  const wit = h("div", { class: "panel" }, h("p", { class: "loading" }, "Loading…"));
  fill(view,
    h("p", { class: "crumbs" }, h("a", { href: "#/services" }, "Services"), " / "),
    h("h1", {}, name),
    routes.el,
    h("section", {}, h("h2", {}, "Call"), form),
    versions.el,
    h("section", {}, h("h2", {}, "Interface (WIT)"), wit));


  // The description carries the methods and the WIT; the form is built once from it and kept
  // across updates so what the user typed stays.
  async function describe() {
    try {
      const d = await api(`/api/services/${path}`);
      const lines = (d.wit || "").split("\n").length;
      fill(wit, d.wit
        ? h("details", {}, h("summary", {}, `The component's WIT (${lines} lines)`), h("pre", { class: "wit" }, d.wit))
        : h("p", { class: "muted" }, "No WIT."));
      fill(form, callForm(name, d, () => [...new Set([...localVersions, ...routeVersions])]));
    } catch (e) {
      fill(wit, errorBox(e));
      fill(form, errorBox(e));
    }
  }
  describe();
  return {
    update(what) {
      if (what.includes("services") || what.includes("providers")) {
        routes.refresh();
        versions.refresh();
      }
    },
  };

  function renderVersions(list) {
    if (list === null) return h("p", { class: "muted" }, "It does not run on this node: its versions are listed on the nodes that run it.");
    localVersions = list.filter((v) => v.state === "serving" || v.state === "superseded").map((v) => v.version);
    return table(
      ["Version", "State", "Source", "Calls", "Time left", "Why"],
      list.map((v) => [
        h("code", {}, v.version),
        h("span", { class: `state state-${v.state}` }, v.state),
        v.source ? `${v.source}${v.commit ? ` @ ${v.commit.slice(0, 12)}` : ""}` : "uploaded",
        String(v.calls ?? 0),
        v.time_left_ms === null || v.time_left_ms === undefined ? "–" : duration(v.time_left_ms),
        v.reason ?? "",
      ]),
    );
  }
}

function renderRoutes(routes) {
  return table(
    ["Node", "Version", "State", "RTT", "Load", "Cost"],
    routes.map((r) => [
      nodeId(r.node, r.local),
      h("code", {}, r.version ?? "–"),
      r.healthy === false ? "down" : "up",
      r.local ? "local" : us(r.rtt_us),
      String(r.load ?? 0),
      String(r.cost ?? 0),
    ]),
    "No node serves it now.",
  );
}

function callForm(name, d, versions) {
  if (d.kind === "http") {
    return h("p", {}, "It serves HTTP: open ", h("a", { href: `/${name}/` }, `/${name}/`), ".");
  }
  const methods = d.methods ?? [];
  const method = h("select", { id: "call-method", name: "method" },
    methods.map((m) => h("option", { value: m }, m)));
  const version = h("select", { id: "call-version", name: "version" },
    h("option", { value: "" }, "serving version"));
  // The live versions change; the choice is offered again each time the form is used.
  const offerVersions = () => {
    const chosen = version.value;
    fill(version, h("option", { value: "" }, "serving version"),
      versions().map((v) => h("option", { value: v }, v)));
    version.value = versions().includes(chosen) ? chosen : "";
  };
  version.addEventListener("focus", offerVersions);
  offerVersions();
  const body = h("textarea", { id: "call-body", name: "body", rows: 6, spellcheck: "false" }, "{}");
  const result = h("output", { id: "call-result", for: "call-body" });
  const button = h("button", { type: "submit", id: "call-button" }, "Call");
  const submit = async (e) => {
    e.preventDefault();
    button.disabled = true;
    const target = version.value ? `${name}@${version.value}` : name;
    fill(result, h("p", { class: "loading" }, `Calling ${target}.${method.value}…`));
    try {
      const r = await callService(target, method.value, body.value);
      fill(result, renderAnswer(target, method.value, r));
    } catch (err) {
      fill(result, errorBox(err));
    } finally {
      button.disabled = false;
    }
  };
  return h("form", { class: "call", onsubmit: submit },
    h("label", {}, "Method ", method),
    h("label", {}, "Version ", version),
    h("label", { class: "wide" }, "Body (JSON) ", body),
    h("div", {}, button),
    result);
}

function renderAnswer(target, method, r) {
  let shown = r.text;
  let problem = null;
  if (r.contentType.includes("json")) {
    try {
      const value = JSON.parse(r.text);
      shown = JSON.stringify(value, null, 2);
      if (!r.ok && value?.error) problem = `${value.error}: ${value.message ?? ""}`;
    } catch {
      // Shown as it came.
    }
  }
  const status = `${r.status} ${r.ok ? "OK" : r.statusText || "error"}`;
  return h("div", { class: r.ok ? "answer" : "answer failed", role: r.ok ? null : "alert" },
    h("p", { class: "status" },
      h("strong", { class: "call-status" }, r.ok ? status : `Error ${status}`),
      ` · ${ms(r.ms)} · ${target}.${method} at ${time(Date.now())}`),
    h("p", { class: "muted" }, `${ms(r.ms)} from sending the request to the answer's last byte; ${ms(r.pageMs)} until this page had it.`),
    problem ? h("p", { class: "call-error" }, problem) : null,
    h("pre", { class: "call-answer" }, shown || "(empty answer)"));
}
