// Drives the web dashboard of two real nodes in headless Chromium (Debian's package) with
// playwright-core. Started by tests/e2e/dashboard.rs, which runs the nodes and passes:
//   MICRO_A_URL, MICRO_A_ID, MICRO_A_PID   the node whose dashboard is opened
//   MICRO_B_URL, MICRO_B_ID, MICRO_B_PID   the other node (a service is deployed on it; it is
//                                          killed to see it grey out and leave the graph)
//   MICRO_HELLO_WASM                       the hello example's component
//   MICRO_SCREENSHOTS                      where each page's screenshot is written
//   MICRO_CHROMIUM                         the browser (default /usr/bin/chromium)
// Each step prints a line; the first failure ends the run with exit code 1 and what failed.

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const A = env("MICRO_A_URL");
const A_ID = env("MICRO_A_ID");
const B = env("MICRO_B_URL");
const B_ID = env("MICRO_B_ID");
const shots = env("MICRO_SCREENSHOTS");
mkdirSync(shots, { recursive: true });

/** How long a step may wait for the page (silent peers are forgotten in 3 s with the tests' settings). */
const WAIT = 20_000;

const step = (text) => console.log(`step: ${text}`);
/** A measured figure, for BENCHMARKS.md (never asserted: machines are shared and noisy). */
const figure = (name, millis) => console.log(`figure: ${name}: ${millis.toFixed(1)} ms`);

const browser = await chromium.launch({
  executablePath: process.env.MICRO_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // No sandbox (CI runs as root); nothing may reach for the internet.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

const problems = [];
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => problems.push(`uncaught in the page: ${e.message}`));
  const shot = async (name) => {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };

  step("the network page shows both nodes, this node's id and its ticket");
  let started = performance.now();
  await page.goto(`${A}/`);
  await page.locator(`svg.graph g.node[data-node="${B_ID}"]`).waitFor();
  figure("open the dashboard until the graph shows both nodes", performance.now() - started);
  await page.locator(`svg.graph g.node.self[data-node="${A_ID}"]`).waitFor();
  await expectCount(page, "svg.graph g.node", 2);
  await expectText(page, "#node-id", A_ID);
  const ticket = await page.locator("#ticket").inputValue();
  if (!ticket.startsWith("micro1")) throw new Error(`the ticket shown is ${JSON.stringify(ticket)}`);
  await page.locator(`svg.graph g.link`).first().waitFor();
  await page.locator("#live[data-state=live]").waitFor();
  await expectText(page, "main table", "default 0."); // the governance each node runs
  await shot("network");

  step("a service deployed on the other node is found by name and listed without a reload");
  await page.click('nav a[data-page="services"]');
  await page.getByText("No services yet.").waitFor();
  await page.evaluate(() => { window.stillThisPage = true; });
  const wasm = readFileSync(env("MICRO_HELLO_WASM"));
  const deployed = await fetch(`${B}/api/services/hello`, { method: "PUT", body: wasm });
  if (deployed.status !== 201) throw new Error(`deploying hello on B: ${deployed.status} ${await deployed.text()}`);
  started = performance.now();
  await page.fill("#find-name", "hello");
  // B provides the name in the DHT just after the deploy: until then the search says no node
  // serves it, and is asked again.
  for (;;) {
    await page.click("#find-button");
    await page.locator("#find-result").filter({ hasNotText: "up…" }).waitFor();
    if ((await page.locator("#find-result").innerText()).includes("runs on 1 node")) break;
    if (performance.now() - started > WAIT) throw new Error("hello was never found");
  }
  const link = page.locator("a.service-link", { hasText: "hello" });
  await link.waitFor();
  figure("a service deployed on the other node is found from this node's dashboard", performance.now() - started);
  if (!(await page.evaluate(() => window.stillThisPage === true))) throw new Error("the page reloaded");
  await expectText(page, "main table", B_ID.slice(0, 10));
  await shot("services");

  step("the call form calls the service and shows its answer and timing");
  await link.click();
  await page.locator('#call-method option[value="greet"]').waitFor({ state: "attached" });
  await page.locator("#call-method").selectOption("greet");
  await page.fill("#call-body", '{"name":"Ada"}');
  await page.click("#call-button");
  await expectText(page, "#call-result .call-answer", "Hello, Ada!");
  await expectText(page, "#call-result .call-status", "200");
  // The form's own timing (fetch to answer), over 20 calls after 5 to warm up.
  const shown = [];
  for (let i = 0; i < 25; i++) {
    await page.evaluate(() => document.querySelector("#call-result").replaceChildren());
    await page.click("#call-button");
    const status = await page.locator("#call-result .status").textContent();
    const millis = Number(/· ([0-9.]+) (m?s) ·/.exec(status)?.[1]);
    if (i >= 5) shown.push(/ s ·/.test(status) ? millis * 1000 : millis);
  }
  shown.sort((x, y) => x - y);
  figure("a call from the form to a service on the other node, as the form shows it (median of 20)", shown[10]);
  await expectText(page, "main", "interface"); // the WIT
  await shot("service");

  step("invalid JSON in the call form shows the 400 and its message");
  await page.fill("#call-body", '{"name":');
  await page.click("#call-button");
  await expectText(page, "#call-result .call-status", "400");
  await expectText(page, "#call-result .call-error", "bad-request");
  await shot("service-invalid-json");

  step("a missing service says so instead of a blank page");
  await page.goto(`${A}/#/services/no-such-service`);
  await expectText(page, "main .error", "404");
  await shot("service-missing");

  step("the events page publishes and watches a topic live");
  await page.click('nav a[data-page="events"]');
  await page.fill("#watch-topic", "news");
  await page.click("#watch-button");
  await expectText(page, "#watch-status", "Watching news");
  await page.fill("#publish-topic", "news");
  await page.fill("#publish-body", '{"text":"seen live"}');
  await page.click("#publish-button");
  await expectText(page, "#publish-result", "Published to news");
  await expectText(page, "#watch-list li", "seen live");
  // A message published elsewhere (on B) reaches the watcher here too.
  const elsewhere = await fetch(`${B}/api/topics/news`, { method: "POST", body: '{"text":"from the other node"}' });
  if (!elsewhere.ok) throw new Error(`publishing on B: ${elsewhere.status}`);
  await expectText(page, "#watch-list", "from the other node");
  await page.fill("#publish-topic", "no spaces allowed");
  await page.click("#publish-button");
  await expectText(page, "#publish-result .error", "400");
  await shot("events");

  step("the node page shows resource use, the calls of each service and governance's decisions");
  await page.goto(`${B}/#/node`);
  await expectText(page, "#usage", "MiB");
  await expectText(page, "main table", "hello");
  await expectText(page, "#governance", "governance default");
  await expectText(page, "main", "hello.greet");
  await shot("node");

  step("every page fits a phone's width");
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [name, url] of [["network", `${A}/#/network`], ["services", `${A}/#/services`],
    ["service", `${A}/#/services/hello`], ["events", `${A}/#/events`], ["node", `${B}/#/node`]]) {
    await page.goto(url);
    await page.locator("main h1").waitFor();
    await page.locator(".loading").first().waitFor({ state: "detached" }).catch(() => {});
    const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    if (scroll > width) throw new Error(`the ${name} page is ${scroll}px wide at a phone's ${width}px`);
    await shot(`${name}-phone`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  step("a browser that cannot run the page's modules is told so, not left with a blank page");
  const broken = await context.newPage();
  await broken.route("**/_/app.js", (route) => route.abort());
  await broken.goto(`${A}/`);
  await expectText(broken, "main .error", "did not start");
  await broken.screenshot({ path: join(shots, "scripts-blocked.png") });
  await broken.close();

  step("a node that drops out greys out, then leaves the graph once forgotten");
  await page.goto(`${A}/#/network`);
  await page.locator(`svg.graph g.node[data-node="${B_ID}"]`).waitFor();
  process.kill(Number(env("MICRO_B_PID")), "SIGKILL");
  await page.locator(`svg.graph g.node.down[data-node="${B_ID}"]`).waitFor();
  await expectText(page, `svg.graph g.node.down[data-node="${B_ID}"]`, "down");
  await shot("network-node-down");
  await page.locator(`svg.graph g.node[data-node="${B_ID}"]`).waitFor({ state: "detached" });
  await expectCount(page, "svg.graph g.node", 1);
  await shot("network-node-gone");

  step("a node that stops answering is reported, not a blank page");
  process.kill(Number(env("MICRO_A_PID")), "SIGKILL");
  await page.locator("#live[data-state=down]").waitFor();
  await page.click('nav a[data-page="services"]');
  await expectText(page, "main .error", "did not answer");
  await shot("node-unreachable");
  // The page's own error events for the refused requests are expected now.
  problems.length = 0;
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.message}`);
  try {
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages[0]) {
      await pages[0].screenshot({ path: join(shots, "failure.png"), fullPage: true });
      console.error(`the page's text:\n${(await pages[0].locator("body").innerText()).slice(0, 3000)}`);
    }
  } catch {
    // The failure above is what matters.
  }
} finally {
  await browser.close();
}
for (const p of problems) console.error(p);
console.log(`screenshots in ${shots}`);
process.exit(failed || problems.length ? 1 : 0);

/** Waits until `selector`'s text contains `text`. */
async function expectText(page, selector, text) {
  try {
    await page.waitForFunction(([s, t]) => [...document.querySelectorAll(s)].some((e) => e.textContent.includes(t)), [selector, text], { timeout: WAIT });
  } catch {
    const seen = await page.locator(selector).allTextContents().catch(() => []);
    throw new Error(`${selector} never showed ${JSON.stringify(text)}; it shows ${JSON.stringify(seen.join(" | ").slice(0, 500))}`);
  }
}

/** Waits until `selector` matches exactly `n` elements. */
async function expectCount(page, selector, n) {
  try {
    await page.waitForFunction(([s, k]) => document.querySelectorAll(s).length === k, [selector, n], { timeout: WAIT });
  } catch {
    throw new Error(`${selector} matched ${await page.locator(selector).count()} elements, not ${n}`);
  }
}
