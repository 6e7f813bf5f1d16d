// Shared harness for the browser tests: the real relay (demo mode, port 0), Debian's
// Chromium driven by playwright-core, and helpers that record every request, response and
// CSP violation so each test can check the page's privacy promises.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, readdirSync, readlinkSync, readFileSync, writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import net from "node:net";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

/** Start the relay in demo mode; resolves once it listens. `args`: extra arguments. */
export async function startRelay({ args = [] } = {}) {
  const bin = process.env.APPRODO_RELAY_BIN ?? join(root, "target/debug/approdo-relay");
  const dir = mkdtempSync(join(tmpdir(), "approdo-browser-"));
  const proc = spawn(bin, ["demo", "--listen", "127.0.0.1:0", "--credentials", join(dir, "creds"), ...args], {
    env: { ...process.env, APPRODO_LOG: process.env.APPRODO_TEST_LOG ?? "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const relay = { proc, dir, staff: {}, org: null, url: null };
  const lines = createInterface({ input: proc.stdout });
  await new Promise((ok, fail) => {
    proc.once("exit", (code) => fail(new Error(`relay exited early (${code})`)));
    lines.on("line", (line) => {
      let m;
            if ((m = line.match(/^\s+organisation key\s+([0-9a-f]{64})/))) relay.org = m[1];
      if ((m = line.match(/^\s+bundle hash\s+([0-9a-f]{64})/))) relay.bundleHash = m[1];
      if ((m = line.match(/^\s+metrics\s+(http:\/\/\S+)/))) relay.metrics = m[1];
      if ((m = line.match(/^\s+(operator|interpreter|coordinator)\s+(\S+)\s+file (\S+)\s+passphrase (\S+)/))) {
        relay.staff[m[2]] = { role: m[1], path: m[3], passphrase: m[4] };
      }
      if ((m = line.match(/^listening (\S+)/))) {
        relay.url = `http://${m[1]}`;
        ok();
      }
    });
  });
  relay.stop = async () => {
    proc.kill("SIGTERM");
    await new Promise((ok) => (proc.exitCode !== null ? ok() : proc.once("exit", ok)));
    rmSync(dir, { recursive: true, force: true });
  };
  return relay;
}

/** A TCP proxy in front of the relay whose connections a test can cut, as a network would. */
export async function startProxy(targetUrl) {
  const target = new URL(targetUrl);
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() {
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise((ok) => { for (const s of sockets) s.destroy(); server.close(ok); }),
  };
}

/**
 * A fresh Chromium profile with one page, recording what the page does. `mobile` emulates
 * a 360 px wide touch phone; `locale` sets the browser's language; `webTransport: false`
 * removes WebTransport from the page (the default with APPRODO_BROWSER_TRANSPORT=websocket,
 * to run any test over WebSocket); `extraArgs` are further Chromium flags.
 */
export async function openBrowser({ mobile = false, media = false, locale = undefined, webTransport = process.env.APPRODO_BROWSER_TRANSPORT !== "websocket", extraArgs = [] } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "approdo-chromium-"));
  const args = [...FLAGS, ...extraArgs];
  if (media) {
    args.push("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--allow-loopback-in-peer-connection");
  }
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: mobile ? { width: 360, height: 740 } : { width: 1280, height: 900 },
    isMobile: mobile,
    hasTouch: mobile,
    deviceScaleFactor: mobile ? 2 : 1,
    // The browser's languages (navigator.languages), e.g. "ru-RU"; Chromium's own otherwise.
    locale,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const record = { requests: [], responses: [], console: [] };
  page.on("request", (r) => record.requests.push(r.url()));
  page.on("response", (r) => record.responses.push({ url: r.url(), status: r.status(), headers: r.headers() }));
  page.on("console", (m) => record.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => record.console.push(`pageerror: ${e.message}`));
  // Record CSP violations from inside the page (CDP-injected, not subject to the CSP).
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  if (media) await context.addInitScript(spyOnCalls);
  // A browser without WebTransport (older Safari, say): the page must use its WebSocket.
  if (!webTransport) await context.addInitScript(() => { delete window.WebTransport; });
  return {
    context,
    page,
    record,
    async cspViolations() {
      const inPage = await page.evaluate(() => window.__csp ?? []).catch(() => []);
      const logged = record.console.filter((l) => /Content Security Policy/i.test(l));
      return [...inPage, ...logged];
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A real coturn (Debian's `turnserver`) on loopback for the TURN tests: one TCP listener on
 * a free port, plain TCP (`turn:`) or, with `tls`, TLS only (`turns:`, a fresh self-signed
 * P-256 certificate for `localhost` made with openssl; `spki` is its key's SHA-256 for
 * Chromium's `--ignore-certificate-errors-spki-list`). No UDP or DTLS listener;
 * `use-auth-secret` with a fresh random secret the relay gets through `relay.args`, peers
 * limited to 127.0.0.1 (the SFU), no CLI, and no log anywhere (coturn would log every
 * client's address). Resolves once it accepts TCP.
 */
export async function startTurn({ tls = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "approdo-turn-"));
  const port = await freeTcpPort();
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  let spki = null;
  if (tls) {
    const openssl = (args, input) => new Promise((ok, fail) => {
      const p = spawn("openssl", args, { stdio: ["pipe", "pipe", "ignore"] });
      const out = [];
      p.stdout.on("data", (d) => out.push(d));
      p.once("error", fail);
      p.once("exit", (code) => (code === 0 ? ok(Buffer.concat(out)) : fail(new Error(`openssl ${args[0]} exited ${code}`))));
      p.stdin.end(input ?? "");
    });
    await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]);
    const der = await openssl(["pkey", "-pubin", "-outform", "der"], await openssl(["x509", "-in", cert, "-pubkey", "-noout"]));
    spki = createHash("sha256").update(der).digest("base64");
  }
  const secret = randomBytes(32).toString("hex");
  const secretFile = join(dir, "secret");
  writeFileSync(secretFile, secret + "\n", { mode: 0o600 });
  const conf = join(dir, "turnserver.conf");
  writeFileSync(conf, [
    "listening-ip=127.0.0.1",
    "relay-ip=127.0.0.1",
    ...(tls
      ? [`tls-listening-port=${port}`, "no-tcp", `cert=${cert}`, `pkey=${key}`, "no-tlsv1", "no-tlsv1_1"]
      : [`listening-port=${port}`, "no-tls"]),
    "no-udp", "no-dtls",
    "use-auth-secret",
    `static-auth-secret=${secret}`,
    "realm=approdo.test",
    "fingerprint",
    "no-tcp-relay",
    // The SFU listens on loopback in the tests: allow exactly that, deny everything else.
    "allow-loopback-peers",
    "no-multicast-peers",
    "denied-peer-ip=0.0.0.0-255.255.255.255",
    "denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "allowed-peer-ip=127.0.0.1",
    "no-cli",
    // No log: simple-log keeps coturn from appending a date to /dev/null and falling back
    // to a file of its own choosing.
    "no-stdout-log", "log-file=/dev/null", "simple-log",
    `pidfile=${join(dir, "turnserver.pid")}`,
    `userdb=${join(dir, "turndb")}`,
    "",
  ].join("\n"), { mode: 0o600 });
  const bin = process.env.APPRODO_TURNSERVER ?? "turnserver";
  const proc = spawn(bin, ["-c", conf], { stdio: "ignore" });
  const exited = new Promise((ok) => proc.once("exit", ok));
  const end = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`turnserver exited early (${proc.exitCode})`);
    if (await canConnect(port)) break;
    if (Date.now() > end) { proc.kill("SIGKILL"); throw new Error("turnserver did not listen"); }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return {
    proc,
    dir,
    url: tls ? `turns:localhost:${port}?transport=tcp` : `turn:127.0.0.1:${port}?transport=tcp`,
    spki,
    get args() { return ["--turn-url", this.url, "--turn-secret-file", secretFile]; },
    async stop() {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP port free on loopback right now. */
function freeTcpPort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

function canConnect(port) {
  return new Promise((ok) => {
    const c = net.connect(port, "127.0.0.1");
    c.once("connect", () => { c.destroy(); ok(true); });
    c.once("error", () => ok(false));
  });
}

/** The relay's UDP ports for calls in the tests that look at ports: two SFU shards, each
 * with one socket (`--sfu-port`, `--sfu-shards`). */
export const SFU_PORTS = { min: 40000, max: 40001 };
export const SFU_ARGS = ["--sfu-port", `${SFU_PORTS.min}`, "--sfu-shards", `${SFU_PORTS.max - SFU_PORTS.min + 1}`];

/** The relay's SFU census from its metrics: call legs held and routing entries. */
export async function sfuCensus(relay) {
  const text = await (await fetch(relay.metrics)).text();
  const value = (name) => Number(text.match(new RegExp(`^${name} (\\d+)$`, "m"))?.[1] ?? NaN);
  return { legs: value("approdo_sfu_peer_connections"), routes: value("approdo_sfu_routes") };
}

/** Wait until the SFU census satisfies `pred`; returns it. */
export async function untilCensus(relay, pred, what, timeout = 15_000) {
  const end = Date.now() + timeout;
  let c;
  while (Date.now() < end) {
    c = await sfuCensus(relay);
    if (pred(c)) return c;
    await new Promise((ok) => setTimeout(ok, 250));
  }
  throw new Error(`${what}: SFU census still ${JSON.stringify(c)}`);
}

/**
 * Test-side instrumentation for calls, injected by CDP before the page's own scripts (the
 * pages carry no test hook): every RTCPeerConnection the page creates goes to
 * `window.__pcs` and every Worker to `window.__workers`. With `window.__wrongReceiveKeys`
 * set, each receive key the page hands its media worker is swapped for random bytes, as
 * if this participant held a wrong key for everyone else.
 */
function spyOnCalls() {
  window.__pcs = [];
  window.__workers = [];
  const PC = window.RTCPeerConnection;
  if (PC) {
    window.RTCPeerConnection = class extends PC {
      constructor(...a) { super(...a); window.__pcs.push(this); }
    };
  }
  const W = window.Worker;
  window.Worker = class extends W {
    constructor(...a) { super(...a); window.__workers.push(this); }
    postMessage(m, transfer) {
      if (window.__wrongReceiveKeys && m && m.op === "key" && !m.send) {
        m = { ...m, key: crypto.getRandomValues(new Uint8Array(16)).buffer };
        transfer = [m.key];
      }
      return super.postMessage(m, transfer);
    }
  };
}

/**
 * The stats of the page's live call connection, as plain objects: inbound-rtp audio/video,
 * outbound-rtp, remote and local candidates. Empty if there is none.
 */
export async function callStats(page) {
  return page.evaluate(async () => {
    const pc = [...(window.__pcs || [])].reverse().find((p) => p.connectionState !== "closed");
    if (!pc) return [];
    return [...(await pc.getStats()).values()].map((s) => ({ ...s }));
  });
}

/** Sum of one field over the inbound-rtp stats of one kind. */
export function inbound(stats, kind, field) {
  return stats.filter((s) => s.type === "inbound-rtp" && s.kind === kind).reduce((n, s) => n + (s[field] || 0), 0);
}

/** Wait until `pred(stats)` holds for the page's call stats; returns those stats. */
export async function untilStats(page, pred, what, timeout = 30_000) {
  const end = Date.now() + timeout;
  let stats = [];
  while (Date.now() < end) {
    stats = await callStats(page);
    if (pred(stats)) return stats;
    await new Promise((ok) => setTimeout(ok, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * The UDP ports a process holds open (from /proc: its socket fds, matched against the
 * kernel's UDP tables), so a test can see the relay's own ports and nobody else's.
 */
export function udpPortsOf(pid) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  const ports = new Set();
  for (const table of ["udp", "udp6"]) {
    let text = "";
    try { text = readFileSync(`/proc/${pid}/net/${table}`, "utf8"); } catch { continue; }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9])) ports.add(parseInt(cols[1].split(":")[1], 16));
    }
  }
  return ports;
}

/**
 * The person (phone, with fake camera and microphone) and the national operator (desk) in
 * an accepted session, both ready to call.
 */
export async function callConversation(relay) {
  const person = await openBrowser({ mobile: true, media: true });
  const operator = await openBrowser({ media: true });
  await deskLogin(operator, relay, "operator-national");
  await personStarts(person, relay.url);
  await acceptFirst(operator.page);
  await untilState(person.page, "chat");
  return { person, operator };
}

/** The operator invites an interpreter for `language`; the interpreter takes it. */
export async function interpreterJoins(operator, interpreter, language) {
  await operator.page.locator("#invite-language").selectOption(language);
  await operator.page.locator("#invite").click();
  const join = interpreter.page.locator("#invitations button[data-session]").first();
  await join.waitFor({ timeout: 20_000 });
  await join.click();
  await interpreter.page.locator("#chat").waitFor({ state: "visible" });
}

/** The operator starts a call; the person answers the invitation with video or voice. */
export async function startCall({ person, operator }, { personVideo = true } = {}) {
  await operator.page.locator("#start-call").click();
  await operator.page.locator("#call-view").waitFor({ state: "visible", timeout: 20_000 });
  await person.page.locator("#call-invite").waitFor({ state: "visible", timeout: 20_000 });
  await person.page.locator(personVideo ? "#video-call" : "#voice-call").click();
  await person.page.locator("#call-view").waitFor({ state: "visible", timeout: 20_000 });
}

/** Every recorded request went to `origin`. Returns the ones that did not. */
export function foreignRequests(record, origin) {
  return record.requests.filter((u) => {
    try {
      const url = new URL(u);
      if (url.protocol === "data:" || url.protocol === "blob:") return false;
      return url.host !== new URL(origin).host;
    } catch {
      return true;
    }
  });
}

/** What the page keeps in browser storage of every kind. */
export async function storageOf(page, context) {
  const cookies = await context.cookies();
  const inPage = await page.evaluate(async () => {
    const out = {};
    try { out.localStorage = localStorage.length; } catch { out.localStorage = "blocked"; }
    try { out.sessionStorage = sessionStorage.length; } catch { out.sessionStorage = "blocked"; }
    try { out.indexedDB = (await indexedDB.databases()).length; } catch { out.indexedDB = "blocked"; }
    try { out.caches = (await caches.keys()).length; } catch { out.caches = "blocked"; }
    try { out.serviceWorkers = (await navigator.serviceWorker.getRegistrations()).length; } catch { out.serviceWorkers = 0; }
    out.cookie = document.cookie;
    return out;
  });
  return { cookies: cookies.length, ...inPage };
}

/** Wait until `document.body.dataset.state` is `state`. */
export async function untilState(page, state, timeout = 20_000) {
  await page.waitForFunction((s) => document.body?.dataset.state === s, state, { timeout });
}

/** The person's path to a conversation: language, who is asking, start. */
export async function personStarts(b, baseUrl, { language = "en", worker = null } = {}) {
  await b.page.goto(`${baseUrl}/`);
  await b.page.locator(`#languages [data-lang="${language}"]`).click();
  await untilState(b.page, "intake");
  if (worker) {
    await b.page.locator('input[name="who"][value="worker"]').check();
    await b.page.locator(`input[name="activator"][value="${worker}"]`).check();
  }
  await b.page.locator("#start").click();
  await b.page.waitForFunction(() => ["waiting", "chat"].includes(document.body.dataset.state), null, { timeout: 20_000 });
}

/** A staff member logs in at the desk with a demo credential. */
export async function deskLogin(b, relay, label, baseUrl = relay.url) {
  const cred = relay.staff[label];
  await b.page.goto(`${baseUrl}/desk`);
  await b.page.locator("#credential-file").setInputFiles(cred.path);
  await b.page.locator("#passphrase").fill(cred.passphrase);
  await b.page.locator("#login").click();
  await untilState(b.page, "desk");
}

/** Type and send a message. */
export async function send(page, text) {
  await page.locator("#message-input").fill(text);
  await page.locator("#send").click();
}

/** Wait until `text` shows in the message list. */
export async function sees(page, text, timeout = 20_000) {
  await page.locator("#messages").getByText(text, { exact: false }).first().waitFor({ timeout });
}

/** The operator accepts the first waiting session. */
export async function acceptFirst(page) {
  const button = page.locator("#queue button[data-session]").first();
  await button.waitFor({ timeout: 20_000 });
  await button.click();
  await page.locator("#chat").waitFor({ state: "visible", timeout: 20_000 });
}

/** The safety code shown on a page, once it is a real code. */
export async function safetyCode(page) {
  await page.waitForFunction(() => /^\d{4} \d{4} \d{4} \d{4}$/.test(document.querySelector("#safety-code")?.textContent.trim() ?? ""), null, { timeout: 20_000 });
  return (await page.locator("#safety-code").textContent()).trim();
}

/**
 * A person (phone) and the national operator (desk) in an accepted session: the starting
 * point of most tests. `close()` closes both browsers.
 */
export async function conversation(relay, { language = "en", worker = null, baseUrl = relay.url } = {}) {
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  await deskLogin(operator, relay, "operator-national");
  await personStarts(person, baseUrl, { language, worker });
  await acceptFirst(operator.page);
  await untilState(person.page, "chat");
  return {
    person,
    operator,
    async close() {
      await person.close();
      await operator.close();
    },
  };
}

/** Switch a logged-in desk to one of its languages ("it" by default, or "en"). */
export async function deskLanguage(b, code) {
  await b.page.locator("#desk-language").selectOption(code);
  await b.page.waitForFunction((c) => document.documentElement.lang === c, code);
}
