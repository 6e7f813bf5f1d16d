// Shared by the person's page and the staff desk: loading the core, fetching
// same-origin JSON, and the driver (WebTransport, or WebSocket when that fails). Nothing here writes to any browser
// storage; every secret lives inside the wasm object and dies with it.

// Memoise a promise, but forget a failure so that pressing Start again retries.
const once = (f) => {
  let p = null;
  return () => (p ||= f().catch((e) => { p = null; throw e; }));
};

/**
 * `/integrity.json` ({path: "sha384-…"}): every file the pages load, the deployment's
 * /config.json included (the relay adds it at start). It is covered by the published
 * bundle hash. Without it nothing loads.
 */
const integrity = once(() =>
  fetch("/integrity.json").then((r) => {
    if (!r.ok) throw new Error("integrity manifest: http " + r.status);
    return r.json();
  }),
);

/**
 * fetch() a same-origin file with the SRI hash the manifest lists for it. A file the
 * manifest does not list is refused: the page fails closed rather than run or trust
 * something nobody published.
 */
export async function checked(path) {
  const sri = (await integrity())[path];
  if (typeof sri !== "string" || !sri.startsWith("sha384-")) {
    throw new Error("no integrity entry for " + path);
  }
  return fetch(path, { integrity: sri });
}

export async function fetchJSON(path) {
  const r = await checked(path);
  if (!r.ok) throw new Error("http " + r.status);
  return r.json();
}

/**
 * `/config.json`: {org, desks: [{id, name}], revocations, webtransport}; the first desk is the national
 * one; `org` is the organisation key the core pins, `revocations` the signed list (hex, for
 * `addRevocations`). Fetched through the integrity manifest, so it is what the published
 * bundle hash covers.
 */
export const config = once(() => fetchJSON("/config.json"));

/**
 * The WebAssembly core. Imported dynamically, so that a glue or wasm that fails to load
 * can never take the quick exit down with it.
 */
export const loadCore = once(async () => {
  // The page names its build of the core: the desk's has staff credentials, the person's not.
  const base = document.documentElement.dataset.core ?? "/pkg";
  // The wasm is compiled as soon as it is in and has passed its integrity check, while the
  // glue may still be on its way (on a slow network it can arrive after the wasm);
  // instantiating, which runs the core, waits for both.
  const [mod, compiled] = await Promise.all([
    import(`${base}/approdo_wasm.js`),
    checked(`${base}/approdo_wasm_bg.wasm`).then((r) => {
      if (!r.ok) throw new Error("core: http " + r.status);
      // Streaming needs the wasm MIME type (a proxy could change it): bytes otherwise.
      const wasmType = (r.headers.get("content-type") || "").split(";")[0].trim() === "application/wasm";
      return typeof WebAssembly.compileStreaming === "function" && wasmType
        ? WebAssembly.compileStreaming(r)
        : r.arrayBuffer().then((b) => WebAssembly.compile(b));
    }),
  ]);
  await mod.default({ module_or_path: compiled });
  return mod.Approdo;
});

const wsUrl = () => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

// A connection opened before the core is ready (preconnect), for the first Driver to take.
let early = null;

/**
 * Open the connection to the relay now (WebTransport or WebSocket, as `Link` chooses),
 * while the core is still loading, so that the first `Driver.connect()` finds it open
 * rather than starting a round trip on a slow network. The relay says nothing until the
 * client speaks, so no frame is missed.
 */
export function preconnect() {
  if (early) return;
  early = new Link();
  early.onclose = () => { early = null; };
}

/** The preconnected link, if it is still opening or open. */
function takeEarly() {
  const link = early;
  early = null;
  if (!link) return null;
  link.onclose = null;
  return link.dead ? null : link;
}

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];
const PING_MS = 20000;
// The relay answers every ping; this long without a byte means the connection is dead
// even if the browser has not noticed (common on mobile networks).
const SILENCE_MS = 50000;
const CONNECT_TIMEOUT_MS = 15000;
// How long WebTransport may take to open before the page uses the WebSocket instead
// (UDP blocked: nothing answers at all). The same figure as the terminal client's.
const WEBTRANSPORT_TIMEOUT_MS = 2500;
// Largest frame the relay sends (the WebSocket's limit too).
const MAX_FRAME_LEN = 65535;
// "webtransport" or "websocket" once one has worked; after WebTransport failed before ever
// opening, the WebSocket for the rest of the page's life. Memory only.
let transportChoice = null;

function hexBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

/**
 * One connection to the relay, WebTransport (the `webtransport` entry of /config.json: a
 * UDP port, certificate hashes) or WebSocket. Both carry the same frames; on WebTransport
 * they go on one bidirectional stream, each prefixed by its length (u32, big-endian).
 * callbacks: onopen(), onmessage(Uint8Array), onclose(); `open` says whether it is usable.
 */
class Link {
  constructor() {
    this.open = false;
    this.dead = false;
    this.kind = null;
    this.inner = null;
    // Without WebTransport (or once it failed) there is nothing to wait for: /config.json
    // only says where WebTransport is, so the WebSocket opens at once.
    if (typeof WebTransport !== "function" || transportChoice === "websocket") {
      this.webSocket();
      return;
    }
    config()
      .then((c) => c.webtransport)
      .catch(() => null)
      .then((wt) => {
        if (this.dead) return;
        if (wt) this.webTransport(wt); else this.webSocket();
      });
  }

  webSocket() {
    this.kind = "websocket";
    const ws = new WebSocket(wsUrl());
    ws.binaryType = "arraybuffer";
    this.inner = ws;
    ws.onopen = () => this.opened();
    ws.onmessage = (ev) => { if (ev.data instanceof ArrayBuffer) this.onmessage?.(new Uint8Array(ev.data)); };
    ws.onclose = () => this.closed();
  }

  webTransport(wt) {
    this.kind = "webtransport";
    const options = {};
    if (Array.isArray(wt.hashes) && wt.hashes.length) {
      options.serverCertificateHashes = wt.hashes.map((h) => ({ algorithm: "sha-256", value: hexBytes(h) }));
    }
    let t;
    try {
      t = new WebTransport(`https://${location.hostname}:${wt.port}${wt.path ?? "/wt"}`, options);
    } catch {
      this.fallBack();
      return;
    }
    this.inner = t;
    const guard = setTimeout(() => { if (!this.open) { try { t.close(); } catch { /* closing */ } this.fallBack(); } }, WEBTRANSPORT_TIMEOUT_MS);
    t.ready
      .then(() => t.createBidirectionalStream())
      .then((stream) => {
        clearTimeout(guard);
        if (this.dead || this.inner !== t) { try { t.close(); } catch { /* closing */ } return; }
        this.writer = stream.writable.getWriter();
        this.opened();
        this.readFrames(stream.readable.getReader());
      })
      .catch(() => { clearTimeout(guard); if (this.inner === t) this.fallBack(); });
    t.closed.then(() => this.inner === t && this.open && this.closed(), () => this.inner === t && this.open && this.closed());
  }

  /** WebTransport did not open: the WebSocket now, and for the rest of the page's life. */
  fallBack() {
    if (this.dead || this.open || this.kind !== "webtransport") return;
    if (transportChoice !== "webtransport") transportChoice = "websocket";
    this.inner = null;
    this.webSocket();
  }

  async readFrames(reader) {
    let buf = new Uint8Array(0);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const joined = new Uint8Array(buf.length + value.length);
        joined.set(buf);
        joined.set(value, buf.length);
        buf = joined;
        while (buf.length >= 4) {
          const len = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0);
          if (len > MAX_FRAME_LEN) throw new Error("frame too large");
          if (buf.length < 4 + len) break;
          const frame = buf.slice(4, 4 + len);
          buf = buf.slice(4 + len);
          this.onmessage?.(frame);
        }
      }
    } catch { /* the connection ended */ }
    this.closed();
  }

  opened() {
    if (this.dead) return;
    this.open = true;
    transportChoice = this.kind;
    document.documentElement.dataset.transport = this.kind;
    this.onopen?.();
  }

  closed() {
    if (this.dead) return;
    this.dead = true;
    this.open = false;
    this.onclose?.();
  }

  send(bytes) {
    if (!this.open) return;
    if (this.kind === "websocket") {
      this.inner.send(bytes);
      return;
    }
    const out = new Uint8Array(4 + bytes.length);
    new DataView(out.buffer).setUint32(0, bytes.length);
    out.set(bytes, 4);
    this.writer.write(out).catch(() => this.closed());
  }

  /** Let go; a WebSocket still sends what is buffered before closing. */
  close() {
    this.dead = true;
    this.open = false;
    this.onopen = this.onmessage = this.onclose = null;
    const inner = this.inner;
    this.inner = null;
    try {
      if (this.kind === "websocket") inner?.close(1000);
      else {
        // What is written still goes out before the session closes (within a bound).
        const shut = () => { try { inner?.close(); } catch { /* already closed */ } };
        const bound = setTimeout(shut, 2000);
        (this.writer ? this.writer.close() : Promise.resolve()).catch(() => {}).finally(() => { clearTimeout(bound); shut(); });
      }
    } catch { /* already closed */ }
  }
}

/**
 * Moves bytes between one `Approdo` client and the relay (WebTransport when it works,
 * otherwise WebSocket; the person never chooses).
 * hooks: onEvent(obj), onOpen(isReopen), onStatus("open" | "reconnecting").
 */
export class Driver {
  constructor(client, hooks) {
    this.client = client;
    this.hooks = hooks;
    this.link = null;
    this.opened = false; // ever opened: later opens are reconnections
    this.stopped = false;
    this.attempt = 0;
    this.timer = 0;
    this.lastRx = 0;
    this.pumping = false;
    this.again = false;
    this.onOnline = () => this.reconnectNow();
    // Phones freeze background tabs; coming back is the moment to check the connection.
    this.onVisible = () => { if (!document.hidden) this.keepAlive() || this.reconnectNow(); };
    addEventListener("online", this.onOnline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.ping = setInterval(() => this.keepAlive(), PING_MS);
  }

  /** Whether a connection is open. */
  isOpen() {
    return !!this.link?.open;
  }

  connect() {
    if (this.stopped || this.link) return;
    clearTimeout(this.timer);
    const link = takeEarly() ?? new Link();
    this.link = link;
    const guard = setTimeout(() => { if (!link.open && this.link === link) this.drop(); }, CONNECT_TIMEOUT_MS);
    link.onopen = () => {
      clearTimeout(guard);
      const reopen = this.opened;
      this.opened = true;
      this.attempt = 0;
      this.lastRx = Date.now();
      try {
        if (reopen) this.client.reconnected();
        this.hooks.onOpen?.(reopen);
      } catch (e) { console.warn("open:", e.message); }
      this.hooks.onStatus?.("open");
      this.pump();
    };
    link.onmessage = (bytes) => {
      this.lastRx = Date.now();
      if (!this.client) return;
      try {
        this.client.handle(bytes, Math.floor(Date.now() / 1000));
      } catch (e) {
        // A bad frame is dropped; the core keeps its sessions in step.
        console.warn("frame:", e.message);
      }
      this.pump();
    };
    link.onclose = () => { clearTimeout(guard); if (this.link === link) this.drop(); };
    // A preconnected link may have opened already.
    if (link.open) link.onopen();
  }

  /** Let go of the connection. */
  detach() {
    const link = this.link;
    this.link = null;
    link?.close();
  }

  /** Forget the current connection and schedule the next attempt. */
  drop() {
    this.detach();
    if (this.stopped) return;
    this.hooks.onStatus?.("reconnecting");
    const delay = BACKOFF_MS[Math.min(this.attempt++, BACKOFF_MS.length - 1)];
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped || this.link) return;
    this.attempt = 0;
    this.connect();
  }

  /** Ping; a connection silent for too long is replaced. Returns whether one is live. */
  keepAlive() {
    if (!this.isOpen()) return false;
    if (Date.now() - this.lastRx > SILENCE_MS) { this.drop(); return false; }
    this.client.ping();
    this.pump();
    return true;
  }

  /** Send queued frames (only on an open connection: otherwise they stay in the core). */
  transmit() {
    const link = this.link;
    if (!link?.open || !this.client) return;
    let f;
    while ((f = this.client.pollTransmit()) !== undefined) link.send(f);
  }

  /** Call after any action: sends what the core queued and dispatches its events. */
  pump() {
    if (this.pumping) { this.again = true; return; }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.transmit();
        let s;
        while (this.client && (s = this.client.pollEvent()) !== undefined) {
          let ev;
          try { ev = JSON.parse(s); } catch { continue; }
          try { this.hooks.onEvent(ev); } catch (e) { console.error(e); }
        }
        this.transmit();
      } while (this.again && this.client);
    } finally {
      this.pumping = false;
    }
  }

  /** Flush what is queued (best effort), close for good and stop retrying. */
  close() {
    if (this.stopped) return;
    try { this.transmit(); } catch { /* best effort */ }
    this.stopped = true;
    this.client = null;
    clearInterval(this.ping);
    clearTimeout(this.timer);
    removeEventListener("online", this.onOnline);
    document.removeEventListener("visibilitychange", this.onVisible);
    this.detach();
  }
}

/** Free the wasm object now, so its keys are zeroised rather than left to the GC. */
export function freeClient(client) {
  try { client?.free(); } catch { /* already freed */ }
}

/** Tiny DOM builder: h("li", {class: "x", dataset: {from: "me"}}, "text", child). */
export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k in el && k !== "list" && typeof el[k] !== "function") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...kids.flat().filter((c) => c != null && c !== false));
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
