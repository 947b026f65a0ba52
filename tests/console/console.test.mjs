// The web console in a real headless browser (Debian's chromium, driven by playwright-core)
// against `meridian dev`: sign in, approve a CAB task, create an incident with a bad field and
// see the error next to it, open the CMDB graph; the calendar and dashboards; a phone; and the
// accessibility basics on every page. Screenshots go to REPORTS/console/, the figures to
// REPORTS/console.json.
//
// Usage: node console.test.mjs MERIDIAN_BINARY REPORTS_DIR

import { spawn, execFileSync } from "node:child_process";
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const [binary, reportsArg] = process.argv.slice(2);
if (!binary || !reportsArg) {
  console.error("usage: node console.test.mjs MERIDIAN_BINARY REPORTS_DIR");
  process.exit(2);
}
const reports = resolve(reportsArg);
const shots = join(reports, "console");
mkdirSync(shots, { recursive: true });
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

function freePort() {
  return new Promise((ok) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** `meridian dev` on a free port with its own data folder; `args` go before `dev`. */
async function startMeridian(args = []) {
  const folder = mkdtempSync(join(tmpdir(), "meridian-console-"));
  const port = await freePort();
  const address = `http://127.0.0.1:${port}`;
  const child = spawn(resolve(binary), [...args, "dev", "--data", folder, "--bind", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
  const started = { base: address, data: folder, log: "" };
  child.stdout.on("data", (d) => { started.log += d; });
  child.stderr.on("data", (d) => { started.log += d; });
  started.stop = () => {
    child.kill("SIGTERM");
    rmSync(folder, { recursive: true, force: true });
  };
  await until("meridian dev", async () => (await fetch(`${address}/readyz`)).ok);
  return started;
}

const b64url = (buffer) => Buffer.from(buffer).toString("base64url");

/**
 * A small OpenID provider: discovery, an authorisation endpoint that signs ivy in at once (after
 * checking the PKCE challenge is S256), and a token endpoint that checks the verifier and returns
 * an RS256 access token; its keys go to a JWKS file that the configuration it writes points at.
 */
async function identityProvider() {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const dir = mkdtempSync(join(tmpdir(), "meridian-idp-"));
  const jwks = join(dir, "jwks.json");
  writeFileSync(jwks, JSON.stringify({ keys: [{ ...publicKey.export({ format: "jwk" }), kid: "idp-1", alg: "RS256", use: "sig" }] }));
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const codes = new Map();
  const state = { exchanges: 0, method: null };
  const cors = { "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Content-Type" };
  const server = createHttpServer(async (req, res) => {
    const url = new URL(req.url, issuer);
    if (req.method === "OPTIONS") {
      res.writeHead(204, cors).end();
    } else if (url.pathname === "/.well-known/openid-configuration") {
      res.writeHead(200, { "Content-Type": "application/json", ...cors }).end(JSON.stringify({
        issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
      }));
    } else if (url.pathname === "/authorize") {
      const q = url.searchParams;
      state.method = q.get("code_challenge_method");
      if (q.get("response_type") !== "code" || q.get("client_id") !== "meridian-console" || !q.get("code_challenge")) {
        res.writeHead(400).end("bad authorisation request");
        return;
      }
      const code = b64url(randomBytes(16));
      codes.set(code, { challenge: q.get("code_challenge"), redirect: q.get("redirect_uri") });
      res.writeHead(302, { Location: `${q.get("redirect_uri")}?code=${code}&state=${encodeURIComponent(q.get("state"))}` }).end();
    } else if (url.pathname === "/token" && req.method === "POST") {
      let body = "";
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      const grant = codes.get(form.get("code"));
      codes.delete(form.get("code"));
      const verified = grant && grant.redirect === form.get("redirect_uri")
        && b64url(createHash("sha256").update(form.get("code_verifier") || "").digest()) === grant.challenge;
      if (!verified) {
        res.writeHead(400, { "Content-Type": "application/json", ...cors }).end(JSON.stringify({ error: "invalid_grant" }));
        return;
      }
      state.exchanges += 1;
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg: "RS256", typ: "at+jwt", kid: "idp-1" }));
      const claims = b64url(JSON.stringify({ iss: issuer, aud: "meridian", sub: "ivy", name: "Ivy Ito", roles: ["cab"], iat: now, nbf: now, exp: now + 600 }));
      const signature = b64url(sign("RSA-SHA256", Buffer.from(`${header}.${claims}`), privateKey));
      res.writeHead(200, { "Content-Type": "application/json", ...cors }).end(JSON.stringify({
        access_token: `${header}.${claims}.${signature}`, token_type: "Bearer", expires_in: 600,
      }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  const config = join(dir, "meridian.yaml");
  writeFileSync(config, [
    "auth:", "  mode: jwks", `  issuer: "${issuer}"`, "  audience: meridian", `  jwks_file: "${jwks}"`, "  roles_claim: roles",
    "console:", "  oidc:", `    issuer: "${issuer}"`, "    client_id: meridian-console", "    scope: openid profile", "",
  ].join("\n"));
  return Object.assign(state, {
    config,
    close: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

const meridian = await startMeridian().catch((error) => {
  console.log(`FAIL setup\n${error.stack || error}`);
  process.exit(1);
});
const { base, data } = meridian;

function token(sub, roles) {
  return execFileSync(resolve(binary), ["token", "--data", data, "--sub", sub, "--roles", roles.join(",")]).toString().trim();
}

async function get(path, sub, roles) {
  const response = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${token(sub, roles)}` } });
  return { status: response.status, body: await response.json() };
}

/** Waits for `check` to return a truthy value (the demo seed runs through the API and the bus). */
async function until(what, check, seconds = 60) {
  const end = Date.now() + seconds * 1000;
  let last;
  while (Date.now() < end) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

const results = [];
let browser;

async function scenario(name, body) {
  const started = Date.now();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // A refused request is logged by the browser itself ("Failed to load resource"); the
  // scenarios check what the page shows of it. Any other console error is a fault.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
  });
  try {
    await body(page, context);
    assert.deepEqual(problems, [], "the page reported errors");
    results.push({ name, ok: true, ms: Date.now() - started });
    console.log(`ok   ${name}`);
  } catch (error) {
    await page.screenshot({ path: join(shots, `FAILED-${name.replace(/\W+/g, "-")}.png`), fullPage: true }).catch(() => {});
    results.push({ name, ok: false, error: String(error.stack || error), problems });
    console.log(`FAIL ${name}\n${error.stack || error}\n${problems.join("\n")}`);
  } finally {
    await context.close();
  }
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** The accessibility basics of the page as it stands: labels, names, alt texts, one h1, lang. */
async function accessible(page) {
  const issues = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll("input, select, textarea")) {
      if (el.type === "hidden") continue;
      if (!el.labels?.length && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby")) out.push(`unlabelled ${el.tagName} ${el.name}`);
    }
    for (const el of document.querySelectorAll("button, a[href]")) {
      if (!(el.textContent.trim() || el.getAttribute("aria-label"))) out.push(`nameless ${el.tagName} ${el.outerHTML.slice(0, 80)}`);
    }
    for (const img of document.querySelectorAll("img")) if (!img.hasAttribute("alt")) out.push(`img without alt ${img.src}`);
    for (const svg of document.querySelectorAll("main svg")) {
      if (svg.getAttribute("role") !== "img" || !svg.querySelector("title")) out.push("an SVG chart without role=img and a title");
    }
    if (document.querySelectorAll("main h1").length !== 1) out.push(`${document.querySelectorAll("main h1").length} h1 in main`);
    if (!document.documentElement.lang) out.push("no lang");
    // Contrast (WCAG 2.x): 4.5:1 for text, 3:1 for large text, against the nearest opaque
    // background.
    const rgb = (c) => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { r, g, b, a };
    };
    const luminance = ({ r, g, b }) => {
      const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0.5) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    for (const el of document.body.querySelectorAll("*")) {
      if (el.closest("svg") || !el.getClientRects().length) continue;
      if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
      const style = getComputedStyle(el);
      if (style.visibility === "hidden" || Number(style.opacity) < 1) continue;
      const [hi, lo] = [luminance(rgb(style.color)), luminance(background(el))].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
      if (ratio < (large ? 3 : 4.5)) out.push(`contrast ${ratio.toFixed(2)}:1 of "${el.textContent.trim().slice(0, 30)}"`);
    }
    return out;
  });
  assert.deepEqual(issues, [], "accessibility basics");
}

/** Signs in with the dev login as `user`. */
async function signIn(page, user) {
  await page.goto(`${base}/console/`);
  await page.getByRole("button", { name: new RegExp(`\\(${user}\\)`) }).click();
  await page.getByRole("heading", { level: 1, name: "Approvals inbox" }).waitFor();
}

try {
  // The demo seed: the upgrade before the board, the patch waiting for alice's assessment.
  const cab = await until("the CAB tasks of the demo change", async () => {
    const inbox = await get("/v1/tasks?assignee=me", "bob", ["cab"]);
    return inbox.body.items.find((t) => t.node === "cab");
  });
  browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox", "--disable-gpu"] });

  await scenario("sign in with the dev login", async (page) => {
    await page.goto(`${base}/`);
    await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
    await accessible(page);
    await shot(page, "01-sign-in");
    await page.getByRole("button", { name: /\(alice\)/ }).click();
    await page.getByRole("heading", { level: 1, name: "Approvals inbox" }).waitFor();
    await page.locator("#who").getByText("Alice Martin").waitFor();
    // The triage of the patch change waits for alice.
    await page.getByRole("link", { name: "Assess the risk of the change" }).first().waitFor();
    await accessible(page);
    await shot(page, "02-inbox-alice");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  });

  await scenario("approve a CAB task", async (page) => {
    await signIn(page, "bob");
    await page.getByRole("link", { name: "Decide the change (CAB)" }).first().click();
    await page.getByRole("heading", { level: 2, name: /Upgrade the intranet database/ }).waitFor();
    // What the approval is about: the risk, the conflict with the host patch, the freeze calendar, the quorum.
    await page.getByRole("heading", { name: "Risk factors" }).waitFor();
    await page.getByRole("cell", { name: "criticality of the CIs" }).waitFor();
    const conflicts = page.locator("section", { has: page.getByRole("heading", { name: "Conflicts" }) });
    await conflicts.getByText(/CHG0001001/).waitFor();
    await page.getByText("Quarter-end close").first().waitFor();
    await page.getByRole("heading", { name: "Quorum so far" }).waitFor();
    await page.getByText("approved >= 2").waitFor();
    await accessible(page);
    await shot(page, "03-cab-task");
    const taskId = page.url().split("/").pop();
    await page.getByLabel("Comment").fill("Fine once the snapshot is verified.");
    await page.getByRole("button", { name: "Approved" }).click();
    await page.getByRole("heading", { level: 1, name: "Approvals inbox" }).waitFor();
    await page.getByText(/Decided: approved/).waitFor();
    const task = await get(`/v1/tasks/${taskId}`, "bob", ["cab"]);
    assert.equal(task.body.state, "completed");
    assert.equal(task.body.outcome, "approved");
    assert.equal(task.body.completed_by, "bob");
    assert.equal(task.body.comment, "Fine once the snapshot is verified.");
    // Erin sees bob's vote in the quorum.
    await page.getByRole("button", { name: "Sign out" }).click();
    await signIn(page, "erin");
    await page.getByRole("link", { name: "Decide the change (CAB)" }).first().click();
    await page.getByText("approved: 1").waitFor();
    await page.getByText("Fine once the snapshot is verified.").waitFor();
    await shot(page, "04-cab-quorum");
  });

  await scenario("create an incident with a bad field and see the error", async (page) => {
    await signIn(page, "alice");
    await page.getByRole("link", { name: "Incidents", exact: true }).click();
    await page.getByRole("heading", { level: 1, name: "Incidents" }).waitFor();
    await page.getByRole("link", { name: "New incident" }).click();
    await page.getByLabel(/^Title/).fill("x".repeat(250));
    await page.getByLabel(/^Impact/).selectOption("high");
    await page.getByLabel(/^Urgency/).selectOption("medium");
    await page.getByRole("button", { name: "Create the incident" }).click();
    const error = page.locator('.field[data-field="title"] .error');
    await error.filter({ hasText: /title/ }).waitFor();
    assert.equal(await page.getByLabel(/^Title/).getAttribute("aria-invalid"), "true");
    // The field with the error has the focus, and the error is tied to it.
    assert.equal(await page.evaluate(() => document.activeElement?.name), "title");
    await accessible(page);
    await shot(page, "05-incident-bad-field");
    await page.getByLabel(/^Title/).fill("Checkout page times out");
    await page.getByRole("button", { name: "Create the incident" }).click();
    await page.getByRole("heading", { level: 1, name: /INC\d+: Checkout page times out/ }).waitFor();
    await page.getByRole("heading", { name: "History" }).waitFor();
    await shot(page, "06-incident-created");
    // The list filters by priority: the new one is P2 (high impact, medium urgency).
    await page.goto(`${base}/console/#/incidents?priority=2`);
    await page.getByRole("link", { name: /INC\d+/ }).first().waitFor();
    const titles = await page.locator("tbody tr td:nth-child(3)").allTextContents();
    assert.ok(titles.every((t) => t === "P2"), `priority filter: ${titles}`);
  });

  await scenario("a problem through its actions, each with its fields", async (page) => {
    await signIn(page, "alice");
    await page.getByRole("link", { name: "Problems" }).click();
    await page.getByRole("link", { name: "New problem" }).click();
    await page.getByLabel(/^Title/).fill("VPN clients drop under load");
    await page.getByRole("button", { name: "Create the problem" }).click();
    await page.getByRole("heading", { level: 1, name: /PRB\d+: VPN clients drop under load/ }).waitFor();
    await page.getByRole("button", { name: "Investigate" }).click();
    await page.getByText("under investigation").first().waitFor();
    // A known error needs its symptoms, root cause and workaround: the API names what is missing.
    const known = page.locator("form", { has: page.getByRole("heading", { name: "Known error" }) });
    await known.getByRole("button", { name: "Known error" }).click();
    await known.locator(".field.invalid").first().waitFor();
    await accessible(page);
    await shot(page, "13-problem-known-error-errors");
    await known.getByLabel(/^Symptoms/).fill("Sessions drop every few minutes at peak.");
    await known.getByLabel(/^Root cause/).fill("The concentrator's session table fills up.");
    await known.getByLabel(/^Workaround/).fill("Pin the client to the previous release.");
    await known.getByRole("button", { name: "Known error" }).click();
    await page.locator(".facts").getByText("known error").waitFor();
    await page.getByText("The concentrator's session table fills up.").first().waitFor();
  });

  await scenario("open the CMDB graph and its impact", async (page) => {
    await signIn(page, "alice");
    await page.getByRole("link", { name: "CMDB" }).click();
    await page.getByRole("link", { name: "intranet-db" }).click();
    await page.getByRole("heading", { level: 1, name: "intranet-db" }).waitFor();
    const graph = page.locator(".graph svg");
    await graph.waitFor();
    for (const name of ["intranet-db", "intranet-web", "intranet", "db-host-1"]) {
      assert.equal(await graph.locator(`g[data-ci="${name}"]`).count(), 1, `${name} in the graph`);
    }
    // The impact: the web application and the intranet service fail with it.
    const impact = page.locator("section", { has: page.getByRole("heading", { name: "Impact analysis" }) });
    await impact.getByRole("link", { name: "intranet-web" }).waitFor();
    await impact.getByRole("link", { name: "intranet", exact: true }).waitFor();
    await accessible(page);
    await shot(page, "07-cmdb-graph");
    // A node of the graph is a link to that CI, reachable by keyboard.
    await graph.getByRole("link", { name: /db-host-1/ }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { level: 1, name: "db-host-1" }).waitFor();
  });

  await scenario("change calendar, service levels and evidence", async (page) => {
    await signIn(page, "alice");
    await page.getByRole("link", { name: "Change calendar" }).click();
    await page.getByRole("heading", { level: 1, name: "Change calendar" }).waitFor();
    await page.locator(".timeline rect.change.conflict").first().waitFor();
    await page.getByRole("cell", { name: "Quarter-end close" }).first().waitFor();
    await accessible(page);
    await shot(page, "08-change-calendar");
    await page.getByRole("link", { name: "Service levels" }).click();
    await page.getByRole("heading", { level: 2, name: "Availability" }).waitFor();
    // The seeded mail incident was resolved in time; the payroll outage missed its target.
    await page.locator("svg title", { hasText: "SLA attainment by service and measure" }).waitFor({ state: "attached" });
    await page.getByRole("cell", { name: "E-mail resolution" }).waitFor();
    const payroll = page.getByRole("row", { name: /^Payroll/ });
    await payroll.getByText("breached").waitFor();
    await accessible(page);
    await shot(page, "09-service-levels");
    await page.getByRole("link", { name: "Evidence" }).click();
    await page.getByRole("heading", { level: 2, name: /^Gaps/ }).waitFor();
    await page.getByRole("cell", { name: "4.1", exact: true }).waitFor();
    await accessible(page);
    await shot(page, "10-evidence");
  });

  await scenario("on a phone", async (page, context) => {
    await page.setViewportSize({ width: 390, height: 844 });
    await signIn(page, "bob");
    const menu = page.getByRole("button", { name: "Menu" });
    assert.equal(await menu.getAttribute("aria-expanded"), "false");
    assert.equal(await page.getByRole("link", { name: "Incidents", exact: true }).isVisible(), false);
    await menu.click();
    assert.equal(await menu.getAttribute("aria-expanded"), "true");
    await page.getByRole("link", { name: "Incidents", exact: true }).click();
    await page.getByRole("heading", { level: 1, name: "Incidents" }).waitFor();
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `the page scrolls sideways on a phone (${width}px)`);
    await shot(page, "11-phone-incidents");
    void context;
  });

  await scenario("keyboard: skip link and focus", async (page) => {
    await signIn(page, "alice");
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Approvals inbox" }).waitFor();
    await page.keyboard.press("Tab");
    const first = await page.evaluate(() => document.activeElement?.textContent?.trim());
    assert.equal(first, "Skip to content");
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "main");
    // The console's files carry a policy that allows no inline script and no framing.
    const response = await page.request.get(`${base}/console/js/app.js`);
    assert.match(response.headers()["content-security-policy"], /script-src 'self'/);
    assert.match(response.headers()["content-security-policy"], /frame-ancestors 'none'/);
  });

  await scenario("sign in with an identity provider (OpenID Connect, code with PKCE)", async (page) => {
    const idp = await identityProvider();
    const other = await startMeridian(["--config", idp.config]);
    try {
      await page.goto(`${other.base}/console/`);
      await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
      assert.equal(await page.locator("[data-user]").count(), 0, "no dev login with an identity provider");
      await accessible(page);
      await page.getByRole("button", { name: "Sign in with your organisation" }).click();
      await page.getByRole("heading", { level: 1, name: "Approvals inbox" }).waitFor();
      await page.locator("#who").getByText("Ivy Ito").waitFor();
      assert.equal(new URL(page.url()).search, "", "the code and state are gone from the address");
      assert.equal(idp.exchanges, 1, "one code exchanged");
      assert.equal(idp.method, "S256");
      await shot(page, "12-oidc-signed-in");
    } finally {
      other.stop();
      idp.close();
    }
  });

  void cab;
} catch (error) {
  results.push({ name: "setup", ok: false, error: String(error.stack || error) });
  console.log(`FAIL setup\n${error.stack || error}\n--- meridian dev ---\n${meridian.log.slice(-4000)}`);
} finally {
  await browser?.close();
  meridian.stop();
}

const failed = results.filter((r) => !r.ok).length;
writeFileSync(join(reports, "console.json"), JSON.stringify({
  browser: browserPath, scenarios: results.length, failed, screenshots: "console/", results,
}, null, 2));
process.exit(failed ? 1 : 0);
