// Shared by the person's page and the staff desk: loading the core, fetching
// same-origin JSON, and the WebSocket driver. Nothing here writes to any browser
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
 * `/config.json`: {org, desks: [{id, name}], revocations}; the first desk is the national
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
  const mod = await import(`${base}/approdo_wasm.js`);
  await mod.default({ module_or_path: checked(`${base}/approdo_wasm_bg.wasm`) });
  return mod.Approdo;
});

const wsUrl = () => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

// A connection opened before the core is ready (preconnect), for the first Driver to take.
let early = null;

/**
 * Open the relay's WebSocket now, while the core and the configuration are still loading,
 * so that the first `Driver.connect()` finds it open rather than starting a round trip on
 * a slow network. The relay says nothing until the client speaks, so no frame is missed.
 */
export function preconnect() {
  if (early) return;
  try {
    early = new WebSocket(wsUrl());
  } catch {
    return; // the Driver will try again itself
  }
  early.binaryType = "arraybuffer";
  early.onclose = () => { early = null; };
}

/** The preconnected socket, if it is still opening or open. */
function takeEarly() {
  const ws = early;
  early = null;
  if (!ws) return null;
  ws.onclose = null;
  if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) return ws;
  return null;
}

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];
const PING_MS = 20000;
// The relay answers every ping; this long without a byte means the socket is dead
// even if the browser has not noticed (common on mobile networks).
const SILENCE_MS = 50000;
const CONNECT_TIMEOUT_MS = 15000;

/**
 * Moves bytes between one `Approdo` client and the relay's WebSocket.
 * hooks: onEvent(obj), onOpen(isReopen), onStatus("open" | "reconnecting").
 */
export class Driver {
  constructor(client, hooks) {
    this.client = client;
    this.hooks = hooks;
    this.ws = null;
    this.opened = false; // ever opened: later opens are reconnections
    this.stopped = false;
    this.attempt = 0;
    this.timer = 0;
    this.lastRx = 0;
    this.pumping = false;
    this.again = false;
    this.onOnline = () => this.reconnectNow();
    // Phones freeze background tabs; coming back is the moment to check the socket.
    this.onVisible = () => { if (!document.hidden) this.keepAlive() || this.reconnectNow(); };
    addEventListener("online", this.onOnline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.ping = setInterval(() => this.keepAlive(), PING_MS);
  }

  connect() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    const ws = takeEarly() ?? new WebSocket(wsUrl());
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    const guard = setTimeout(() => { if (ws.readyState === WebSocket.CONNECTING) this.drop(); }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
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
    ws.onmessage = (ev) => {
      this.lastRx = Date.now();
      if (!(ev.data instanceof ArrayBuffer) || !this.client) return;
      try {
        this.client.handle(new Uint8Array(ev.data), Math.floor(Date.now() / 1000));
      } catch (e) {
        // A bad frame is dropped; the core keeps its sessions in step.
        console.warn("frame:", e.message);
      }
      this.pump();
    };
    ws.onclose = () => { clearTimeout(guard); if (this.ws === ws) this.drop(); };
    // A preconnected socket may have opened already.
    if (ws.readyState === WebSocket.OPEN) ws.onopen();
  }

  /** Let go of the socket; close() still sends what is buffered before closing. */
  detach() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws?.close(1000); } catch { /* already closed */ }
  }

  /** Forget the current socket and schedule the next attempt. */
  drop() {
    this.detach();
    if (this.stopped) return;
    this.hooks.onStatus?.("reconnecting");
    const delay = BACKOFF_MS[Math.min(this.attempt++, BACKOFF_MS.length - 1)];
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  /** Ping; a socket silent for too long is replaced. Returns whether a socket is live. */
  keepAlive() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    if (Date.now() - this.lastRx > SILENCE_MS) { this.drop(); return false; }
    this.client.ping();
    this.pump();
    return true;
  }

  /** Send queued frames (only on an open socket: otherwise they stay in the core). */
  transmit() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.client) return;
    let f;
    while ((f = this.client.pollTransmit()) !== undefined) ws.send(f);
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
