// Events: the topics the node has seen, a form to publish, and a live view of one topic
// (a network-wide subscription, as server-sent events from /api/topics/{topic}/events).

import { api } from "../api.js";
import { h, fill, table, panel, nodeId, time, errorBox } from "../dom.js";

/** Messages kept on screen; older ones scroll away. */
const KEEP = 200;

export function mount(view) {
  const topics = panel("Topics", () => api("/api/topics"), (list) => table(
    ["Topic", "Last sequence", "Subscribers here"],
    list.map((t) => [h("code", {}, t.topic), String(t.last_sequence), String(t.subscribers)]),
    "No topics yet: publish to one.",
  ));
  const watcher = watchForm();
  fill(view, h("h1", {}, "Events"), publishForm(topics.refresh), watcher.el, topics.el);
  // Counters of topics change with every message: re-read them while the page is open.
  const timer = setInterval(topics.refresh, 3000);
  return {
    update() {
      topics.refresh();
    },
    unmount() {
      clearInterval(timer);
      watcher.stop();
    },
  };
}

function publishForm(published) {
  const topic = h("input", { id: "publish-topic", name: "topic", value: "chat", required: true, autocomplete: "off" });
  const body = h("textarea", { id: "publish-body", name: "message", rows: 3, spellcheck: "false" },
    '{"room":"lobby","text":"hello from the dashboard"}');
  const type = h("select", { id: "publish-type", name: "content-type" },
    h("option", { value: "application/json" }, "application/json"),
    h("option", { value: "text/plain" }, "text/plain"));
  const result = h("output", { id: "publish-result" });
  const submit = async (e) => {
    e.preventDefault();
    try {
      const r = await api(`/api/topics/${encodeURIComponent(topic.value)}`,
        { method: "POST", body: body.value, contentType: type.value });
      fill(result, h("p", {}, `Published to ${r.topic} as message ${r.sequence}.`));
      published();
    } catch (err) {
      fill(result, errorBox(err));
    }
  };
  return h("section", {}, h("h2", {}, "Publish"),
    h("form", { class: "call", onsubmit: submit },
      h("label", {}, "Topic ", topic),
      h("label", {}, "Content type ", type),
      h("label", { class: "wide" }, "Message ", body),
      h("div", {}, h("button", { type: "submit", id: "publish-button" }, "Publish")),
      result));
}

function watchForm() {
  const topic = h("input", { id: "watch-topic", name: "topic", value: "chat", required: true, autocomplete: "off" });
  const history = h("input", { id: "watch-history", type: "checkbox", checked: true });
  const status = h("p", { id: "watch-status", role: "status" }, "Not watching.");
  const list = h("ol", { id: "watch-list", class: "messages", reversed: true });
  const button = h("button", { type: "submit", id: "watch-button" }, "Watch");
  let stream = null;

  function stop() {
    stream?.close();
    stream = null;
    button.textContent = "Watch";
  }

  function start(name) {
    stop();
    fill(list);
    const query = history.checked ? "?history=true" : "";
    stream = new EventSource(`/api/topics/${encodeURIComponent(name)}/events${query}`);
    button.textContent = "Stop";
    status.textContent = `Subscribing to ${name}…`;
    stream.addEventListener("subscribed", () => {
      status.textContent = `Watching ${name} across the network.`;
    });
    stream.addEventListener("message", (e) => {
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      list.prepend(h("li", { class: "message" },
        h("span", { class: "meta" }, `#${m.sequence} · ${time(m.published_at_ms)} · from `,
          nodeId(m.node), m.publisher ? ` · ${m.publisher}` : "", ` · ${m.content_type}`),
        h("pre", {}, m.payload ?? `(binary, base64) ${m.payload_base64}`)));
      while (list.children.length > KEEP) list.lastElementChild.remove();
    });
    stream.addEventListener("error", () => {
      // The browser reconnects by itself; say so rather than go quiet.
      status.textContent = `The stream of ${name} broke off: reconnecting…`;
    });
  }

  const submit = (e) => {
    e.preventDefault();
    if (stream) {
      stop();
      status.textContent = "Stopped.";
    } else {
      start(topic.value);
    }
  };
  const el = h("section", {}, h("h2", {}, "Watch a topic"),
    h("form", { class: "call", onsubmit: submit },
      h("label", {}, "Topic ", topic),
      h("label", { class: "check" }, history, " with recent history"),
      h("div", {}, button)),
    status, list);
  return { el, stop };
}
