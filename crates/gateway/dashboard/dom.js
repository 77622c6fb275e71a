// Small helpers to build the page from data. Everything from the API goes in as text (never as
// HTML), so a service's answer or a topic's message cannot change the page.

/** Makes an element: h("a", { href: "#/x", class: "y" }, "text", child, …). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table from column headings and rows of cells; `empty` shows when there are no rows. */
export function table(headings, rows, empty = "None.") {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h("div", { class: "scroll" },
    h("table", {},
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c, i) =>
        h("td", { "data-label": headings[i] }, c)))))));
}

/** A section with a heading. */
export function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

/** A node id, shortened for tables; the whole id shows on hover. */
export function nodeId(id, self = false) {
  return h("code", { class: "node-id", title: id }, short(id), self ? " (this node)" : "");
}

export function short(id) {
  return String(id ?? "").slice(0, 10);
}

export function ms(n) {
  if (n === null || n === undefined) return "–";
  return n < 10 ? `${n.toFixed(2)} ms` : n < 1000 ? `${n.toFixed(1)} ms` : `${(n / 1000).toFixed(2)} s`;
}

export function us(n) {
  return n === null || n === undefined ? "–" : ms(n / 1000);
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function duration(millis) {
  if (millis === null || millis === undefined) return "–";
  const s = Math.floor(millis / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function time(epochMs) {
  return epochMs ? new Date(epochMs).toLocaleTimeString() : "–";
}

/** A failure, in words. */
export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, h("strong", {}, "Error: "), String(error?.message ?? error));
}

/**
 * A section whose content comes from the API: `load()` fetches, `render(data)` draws. On
 * `refresh()` it loads again; a failure shows what failed in place of the content. Answers
 * that arrive out of order are dropped.
 */
export function panel(title, load, render) {
  const body = h("div", { class: "panel" }, h("p", { class: "loading" }, "Loading…"));
  const el = title ? section(title, body) : body;
  let latest = 0;
  async function refresh() {
    const mine = ++latest;
    try {
      const data = await load();
      if (mine === latest) fill(body, render(data));
    } catch (e) {
      if (mine === latest) fill(body, errorBox(e));
    }
  }
  refresh();
  return { el, refresh };
}
