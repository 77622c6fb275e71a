// The dashboard reads and changes the node only through its public API under /api/, the one
// the CLI uses. Failures become ApiError, which every page shows in words.

export class ApiError extends Error {
  constructor(what, status, kind, message) {
    super(status ? `${what}: ${status} ${kind}: ${message}` : `${what}: ${message}`);
    this.what = what;
    this.status = status;
    this.kind = kind;
    this.detail = message;
  }
}

/** GETs (or sends) JSON; resolves to the parsed answer or throws ApiError. */
export async function api(path, { method = "GET", body, contentType } = {}) {
  const what = `${method} ${path}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      body,
      headers: contentType ? { "content-type": contentType } : {},
    });
  } catch (e) {
    throw new ApiError(what, 0, "unreachable", `the node did not answer (${e.message})`);
  }
  const text = await response.text();
  let value;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    if (!response.ok) throw new ApiError(what, response.status, "error", text.slice(0, 300));
    throw new ApiError(what, response.status, "bad-answer", "the answer is not JSON");
  }
  if (!response.ok) {
    throw new ApiError(what, response.status, value?.error ?? "error", value?.message ?? text);
  }
  return value;
}

/** Calls a service's method with a raw body; resolves to what came back, whatever its status. */
export async function callService(service, method, body, contentType = "application/json") {
  const path = `/api/call/${encodeURIComponent(service).replace("%40", "@")}/${encodeURIComponent(method)}`;
  const started = performance.now();
  let response;
  try {
    response = await fetch(path, { method: "POST", body, headers: { "content-type": contentType } });
  } catch (e) {
    throw new ApiError(`POST ${path}`, 0, "unreachable", `the node did not answer (${e.message})`);
  }
  const text = await response.text();
  const page = performance.now() - started;
  return {
    status: response.status,
    ok: response.ok,
    statusText: response.statusText,
    contentType: response.headers.get("content-type") ?? "",
    text,
    ms: wireTime(response.url) ?? page,
    pageMs: page,
  };
}

/**
 * From sending the request to the answer's last byte, as the browser's resource timing saw
 * it: the node's and the network's time, without the page's own scheduling (a busy page can
 * take longer to notice an answer than the node took to give it).
 */
function wireTime(url) {
  const entries = performance.getEntriesByName(url, "resource");
  const last = entries[entries.length - 1];
  performance.clearResourceTimings();
  if (!last || !(last.requestStart > 0) || !(last.responseEnd >= last.requestStart)) return null;
  return last.responseEnd - last.requestStart;
}
