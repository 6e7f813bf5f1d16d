// The person's page. Everything the person writes or reads lives in this page's memory
// and in the wasm object; nothing is written to any browser storage.
import { $, h, config, fetchJSON, loadCore, preconnect, Driver, freeClient } from "/common.js";

// First of all, what a slow network should start on at once: the deployment's
// configuration and the connection to the relay (the core is preloaded by the page).
config().catch(() => { /* Start retries */ });
preconnect();

const RTL = new Set(["ar", "ur"]);
const body = document.body;
// The chosen language over English; until then, the English the page was served with.
const served = Object.fromEntries([...document.querySelectorAll("[data-i18n]")].map((e) => [e.dataset.i18n, e.textContent]).filter((e) => e[1]));
let dict = served;
let lang = "en";
let client = null;
let driver = null;
let session = null;
// What the person asked for once Start was tapped, and whether the relay has been asked.
let wanted = null;
let requested = false;
const staff = new Map(); // peer id -> "operator" | "interpreter", verified only
let exited = false;
let call = null; // this session's call (idle until the person joins one)
// The call code (/call.js) is not part of the first load: it is fetched once staff are in
// the conversation. Until then the events it needs (who is there, the call's members) wait
// here; media keys are not kept (no call can have started without the module).
let callApi = null;
let callBacklog = [];
const CALL_EVENTS = new Set(["peer-arrived", "peer-verified", "peer-left", "call-members", "call-answer", "resumed"]);
let invited = false; // staff are in a call the person has not joined
let declined = false; // "Not now" for the current invitation
let lastCode = null; // the last safety code shown, to announce a new one as such
let notSafeWord = ""; // the deployment's code word for "I can't talk now", if any
// A session to take back after a reload (read once, then deleted from the tab).
let rejoining = takeRejoin();

function takeRejoin() {
  try {
    const saved = JSON.parse(sessionStorage.getItem("approdo-rejoin") || "null");
    sessionStorage.removeItem("approdo-rejoin");
    return saved && saved.session && saved.token ? saved : null;
  } catch {
    return null;
  }
}

function forgetRejoin() {
  rejoining = null;
  try { sessionStorage.removeItem("approdo-rejoin"); } catch { /* nothing kept */ }
}
const desks = new Map(); // desk id -> {name, names: {lang: name}}, from /config.json
/** A region's name in the person's language, or the configured one. */
const deskName = (id) => desks.get(id)?.names?.[lang] || desks.get(id)?.name || id;
// Where the quick exit lands: the deployer's page, or the relay's neutral one in the
// person's language (the language in the address only, nothing stored).
let exitTo = null;
const exitUrl = () => exitTo || `/exit?l=${encodeURIComponent(lang)}`;
// Roster confirmations that never come turn into alarms with time.
setInterval(() => {
  if (!client || !driver) return;
  client.handleTimeout(Date.now() / 1000);
  driver.pump();
}, 1000);

const state = (s) => { body.dataset.state = s; };

// --- text

function t(key, vars) {
  let s = dict[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll("{" + k + "}", v);
  return s;
}

// An element's text follows language changes: data-i18n names its key, and an
// optional draw() builds richer content (links, lists) from the same dictionary.
const render = (el) => (el.draw ? el.draw(el) : (el.textContent = t(el.dataset.i18n, el.vars)));

function say(el, key, vars, draw) {
  el.dataset.i18n = key;
  Object.assign(el, { vars, draw });
  render(el);
  return el;
}

// Intl objects, made once per language: the first of each kind loads the browser's locale
// data, which costs tens of milliseconds on a slow phone.
const intlCache = new Map();
function intl(kind, options) {
  const key = `${kind} ${lang} ${JSON.stringify(options ?? {})}`;
  if (!intlCache.has(key)) {
    let made = null;
    try { made = new Intl[kind](lang, options); } catch { /* the caller's fallback */ }
    intlCache.set(key, made);
  }
  return intlCache.get(key);
}

/** `key_<category>` for `n` by the language's plural rules ("1 minute", "2 minutes"…). */
function plural(key, n) {
  const cat = intl("PluralRules")?.select(n) ?? "other";
  const k = dict[`${key}_${cat}`] !== undefined ? `${key}_${cat}` : `${key}_other`;
  const num = intl("NumberFormat")?.format(n) ?? String(n);
  return t(k, { n: num });
}

function translate() {
  document.documentElement.lang = lang;
  document.documentElement.dir = RTL.has(lang) ? "rtl" : "ltr";
  for (const el of document.querySelectorAll("[data-i18n]")) render(el);
  $("#message-input").placeholder = t("message_placeholder");
  // Visible words name the control (its accessible name), and the language it is in now.
  $("#change-language").textContent = `${t("change_language")} · ${t("_lang_name")}`;
  showRegions();
  $("#exit").href = exitUrl();
}

// Translations: only the chosen one is fetched (every file is complete: the build's i18n
// test checks it), and the browser's own language is fetched while the page loads.
const LANGS = [...document.querySelectorAll("#languages [data-lang]")].map((b) => b.dataset.lang);
const dicts = new Map();
function loadDict(code) {
  if (!dicts.has(code)) {
    dicts.set(code, fetchJSON(`/i18n/${code}.json`).catch((e) => { dicts.delete(code); throw e; }));
  }
  return dicts.get(code);
}

/** The first of the browser's languages that is one of ours, by primary subtag ("ru-UA": ru). */
function browserLanguage() {
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || ""];
  for (const tag of wanted) {
    const primary = String(tag).toLowerCase().split(/[-_]/)[0];
    if (LANGS.includes(primary)) return primary;
  }
  return null;
}

// Open in the browser's language when it is one of ours; fetch its texts (or English)
// now, so the tap on it finds them here.
if (!rejoining) {
  const preferred = browserLanguage();
  const first = loadDict(preferred || "en");
  first.then((own) => {
    // A language the person tapped meanwhile wins.
    if (chosen || !preferred || preferred === "en" || body.dataset.state !== "language") return;
    lang = preferred;
    dict = { ...served, ...own };
    translate();
  }).catch(() => { /* the page stays in the English it was served in */ });
}

/** Show the page in `code` (the English it was served in if its texts cannot be had). */
async function useLanguage(code) {
  const own = await loadDict(code).catch(() => (code === "en" ? {} : loadDict("en").catch(() => ({}))));
  lang = code;
  dict = { ...served, ...own };
  translate();
}

let chosen = false; // the person tapped a language
async function chooseLanguage(code) {
  chosen = true;
  await useLanguage(code);
  for (const b of $("#languages").children) b.setAttribute("aria-pressed", b.dataset.lang === code);
  state("intake");
  $("#start").focus();
}

let statusTimer = 0;
function status(key, ms) {
  const el = $("#status");
  clearTimeout(statusTimer);
  el.hidden = !key;
  if (key) say(el, key);
  if (ms) statusTimer = setTimeout(() => { el.hidden = true; }, ms);
}

// --- quick exit

/** Blank the page first, then tell the relay (best effort), then leave for good. */
function quickExit(ev) {
  ev?.preventDefault();
  if (exited) return;
  exited = true;
  forgetRejoin();
  state("exited");
  document.title = "Weather";
  body.replaceChildren();
  try {
    stop(true);
  } finally {
    // replace(): the conversation page leaves no entry to go "back" to.
    location.replace(exitUrl());
  }
}

/** End our session (if any), flush, close the socket and free the core. */
function stop(end) {
  // Camera and microphone off first: nothing keeps recording once the page goes.
  const c = call;
  call = null;
  try { c?.stop(); } catch { /* the page is going anyway */ }
  try { if (end && session && client) client.end(session); } catch { /* gone already */ }
  driver?.close(); // flushes what is queued before closing
  freeClient(client);
    driver = client = session = null;
  wanted = null;
  requested = false;
}

$("#exit").addEventListener("click", quickExit);

// Three presses of Shift within 1.5 s, with no other key in between (so typing
// capitals does not trigger it), as GOV.UK's "Exit this page" does.
let shifts = [];
addEventListener("keydown", (e) => {
  if (e.key !== "Shift") { shifts = []; return; }
  if (e.repeat) return;
  const now = e.timeStamp;
  shifts = shifts.filter((x) => now - x < 1500);
  shifts.push(now);
  if (shifts.length >= 3) quickExit();
}, true);

// A reload (or Back, or pull-to-refresh) must not end the conversation. Before leaving,
// the page warns; if it goes anyway, it keeps the session's resume token in this tab
// only (sessionStorage: gone with the tab, deleted as soon as it is used, by a quick exit
// and at the end), so the reloaded page takes the same seat with the same staff and new
// keys. The relay rotates the token at every use.
const REJOIN_KEY = "approdo-rejoin";
addEventListener("beforeunload", (e) => {
  if (exited || !session || body.dataset.state === "ended") return;
  e.preventDefault();
  e.returnValue = "";
});
addEventListener("pagehide", () => {
  if (exited || !client) return;
  const token = session && body.dataset.state !== "ended" ? client.resumeToken(session) : null;
  if (token) {
    try {
      sessionStorage.setItem(REJOIN_KEY, JSON.stringify({ session, token, lang, ...wanted }));
    } catch { /* storage refused: the conversation ends with the page */ }
    // Leave without ending: the seat waits for the reloaded page (the relay's grace).
    driver?.close();
    freeClient(client);
    driver = client = session = null;
  } else {
    stop(true);
  }
  $("#messages")?.replaceChildren();
});
addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });

// --- step 1 and 2

$("#languages").addEventListener("click", (e) => {
  const b = e.target.closest("[data-lang]");
  if (b) chooseLanguage(b.dataset.lang);
});
$("#change-language").addEventListener("click", () => state("language"));

/** The region choices, named in the person's language. */
function showRegions() {
  const sel = $("#region");
  const chosen = sel.value;
  sel.replaceChildren(sel.firstElementChild, ...[...desks.keys()].slice(1).map((id) =>
    h("option", { value: id, text: deskName(id) })));
  sel.value = chosen;
}

config().then((c) => {
  notSafeWord = (c.notSafeWord || "").trim().toLocaleLowerCase();
  // Checked by the relay at start (https, or a path of its own); a path is kept as given.
  if (typeof c.quickExitUrl === "string" && c.quickExitUrl) exitTo = c.quickExitUrl;
  $("#exit").href = exitUrl();
  for (const d of c.desks || []) {
    desks.set(d.id, { name: d.name, names: d.names && typeof d.names === "object" ? d.names : {} });
  }
  showRegions();
}).catch(() => { /* regions are optional */ });

// Start fetching the core while the person reads; Start awaits the same promise.
loadCore().catch(() => {});

const ACTIVATORS = ["cas-sprar", "prefecture", "territorial-commission", "police", "labour",
  "social-health", "street-unit", "private-citizen"];
$("#activators").append(...ACTIVATORS.map((code) => h("label", { class: "choice" },
  h("input", { type: "radio", name: "activator", value: code }),
  h("span", { dataset: { i18n: "activator_" + code.replaceAll("-", "_") } }))));

function updateIntake() {
  const worker = $("input[name=who]:checked")?.value === "worker";
  $("#activators").hidden = !worker;
  $("#start").disabled = worker && !$("input[name=activator]:checked");
}
$("#s-intake").addEventListener("change", updateIntake);
updateIntake();

$("#start").addEventListener("click", async () => {
  const start = $("#start");
  start.disabled = true;
  const worker = $("input[name=who]:checked")?.value === "worker";
  const seeker = worker ? $("input[name=activator]:checked").value : "myself";
  const region = $("#region").value || null;
  state("waiting");
  say($("#connecting"), "connecting").hidden = false;
  showParticipants();
  $("#message-input").focus(); // they may write at once
  wanted = { seeker, region };
  try {
    const [Approdo, c] = await Promise.all([loadCore(), config()]);
    if (body.dataset.state !== "waiting") return; // exited or ended meanwhile
    connect(Approdo, c);
    requestSession();
  } catch (e) {
    console.warn("start:", e.message);
    stop(false);
    status("error_generic", 6000);
    state("intake");
    start.disabled = false;
  }
});

// --- steps 3 and 4

function onEvent(ev) {
  if (ev.session && session && ev.session !== session) return;
  if (ev.session && call) call.onEvent(ev);
  else if (ev.session && session && CALL_EVENTS.has(ev.type)) callBacklog.push(ev);
  switch (ev.type) {
    case "session-opened":
      adopt(ev.session);
      break;
    case "call-members":
      loadCall();
      showCall();
      break;
    case "queue-status":
      showQueue(ev);
      break;
    case "peer-verified":
      if (ev.role === "operator" || ev.role === "interpreter") {
        // A channel re-established after a loss verifies again: no second "joined".
        if (!staff.has(ev.peer)) system(ev.role + "_joined");
        staff.set(ev.peer, ev.role);
        showParticipants();
        if (body.dataset.state === "waiting") $("#message-input").focus();
        state("chat");
        loadCall();
        showCall();
      }
      break;
    case "peer-left": {
      const role = staff.get(ev.peer);
      if (role) {
        staff.delete(ev.peer);
        system("participant_left", { who: t(role) });
        showParticipants();
        showCall();
      }
      break;
    }
    case "peer-rejected":
      // The core refuses the channel; we also stop, and say so plainly.
      return finish("verification_failed");
    case "safety-code":
      // A mismatch means someone sits between two participants: same answer.
      if (ev.state === "mismatch") return finish("verification_failed");
      if (ev.state === "ready" && lastCode && ev.code !== lastCode) system("safety_code_changed");
      if (ev.state === "ready") lastCode = ev.code;
      $("#safety-code").textContent = $("#call-safety-code").textContent = ev.state === "ready" && ev.code ? ev.code : "…";
      break;
    case "membership-alarm":
      // The relay shows an unexpected participant: nothing reaches them, but say it plainly.
      system("membership_alarm", null, "alert");
      break;
    case "channel-restarted":
      system("channel_restarted", { who: t(staff.get(ev.peer) || "operator").toLocaleLowerCase(lang) });
      break;
    case "undecryptable":
      system("message_lost");
      break;
    case "backlog-full":
      status("backlog_full", 8000);
      break;
    case "transferred":
      system("transferred", { desk: deskName(ev.desk) });
      break;
    case "roster-agreed":
      break;
    case "message":
      addMessage(staff.get(ev.from) || "operator", ev.body);
      break;
    case "resumed":
      status(ev.intact ? "reconnected" : "reconnected_some_lost", 4000);
      break;
    case "session-ended":
      session = null; // the relay ended it: nothing to send
      return finish("session_ended");
    case "relay-error":
      if (!session) {
        // Could not open (busy, rate-limited…): back to the start button.
        stop(false);
        status("error_generic", 6000);
        state("intake");
        updateIntake();
      } else if (ev.code === "resume-failed" || ev.code === "unknown-session") {
        session = null;
        finish("session_ended");
      } else if (ev.code === "replaced") {
        session = null;
        finish("session_taken_over");
      } else {
        status("error_generic", 4000);
      }
      break;
  }
}

/** This page's session, new or taken back after a reload. */
function adopt(id) {
  session = id;
  call = null;
  callBacklog = [];
}

/** Fetch the call code (once staff are here) and give it this session's events so far. */
function loadCall() {
  if (call || !session || exited) return;
  const s = session;
  import("/call.js").then((m) => {
    if (call || session !== s || exited || !client) return;
    callApi = m;
    call = new m.Call({ session: s, client, pump: () => driver?.pump(), hooks: callHooks });
    $("#call-tiles").replaceChildren(call.view);
    for (const ev of callBacklog.splice(0)) call.onEvent(ev);
    showCall();
  }).catch((e) => console.warn("call module:", e.message));
}

// What the person is told about who can answer (CONTRACT.md, queue-status `outlook`).
const OUTLOOK_TEXT = {
  "speaker": "outlook_speaker",
  "with-interpreter": "outlook_with_interpreter",
  "seeking-interpreter": "outlook_seeking_interpreter",
};

function showQueue(ev) {
  $("#connecting").hidden = true;
  const nobody = ev.outlook === "nobody-online";
  const key = OUTLOOK_TEXT[ev.outlook];
  $("#outlook").hidden = !key;
  if (key) say($("#outlook"), key);
  say($("#queue-position"), "queue_position", { n: ev.position });
  // An estimate only from observed waits (0: none yet) and never when nobody is online.
  const minutes = Math.max(1, Math.ceil(ev.waitSecs / 60));
  $("#wait-time").hidden = nobody || !(ev.waitSecs > 0);
  // Drawn only when shown (plural rules load locale data); translate() redraws it.
  say($("#wait-time"), "estimated_wait_other", null, (el) => { el.textContent = el.hidden ? "" : plural("estimated_wait", minutes); });
  const numbers = ev.fallback || [];
  $("#fallback").hidden = numbers.length === 0;
  // With operators online the numbers are an alternative, not "nobody can answer".
  $("#nobody-online").hidden = !nobody;
  // The numbers become tap-to-call links inside the translated sentence.
  say($("#call-numbers"), "call_numbers", null, (el) => {
    const [before, after = ""] = t("call_numbers").split("{numbers}");
    el.replaceChildren(before, ...numbers.flatMap((n, i) => [i ? ", " : "",
      h("a", { href: "tel:" + n.replace(/[^\d+]/g, ""), dir: "ltr", text: n })]), after);
  });
}

function showParticipants() {
  // Only verified staff are listed: a participant still in its handshake reads nothing.
  say($("#participants"), "in_conversation", null, (el) => el.replaceChildren(
    `${t("in_conversation")} ${list([t("you"), ...[...staff.values()].map((r) => t(r))])} `,
    staff.size ? h("span", { class: "verified", text: "✓ " + t("verified_staff") }) : ""));
}

/** "A, B and C" with the separators of the page's language. */
function list(items) {
  // One item needs no separators (the waiting person alone: no locale data to load).
  if (items.length < 2) return items.join("");
  return intl("ListFormat", { type: "conjunction" })?.format(items) ?? items.join(", ");
}

function addMessage(from, text) {
  const li = h("li", { class: "msg", dataset: { from } });
  if (from !== "me") li.append(say(h("span", { class: "who" }), from));
  // Each message takes its own direction (an English reply on an Arabic page, say).
  li.append(h("p", { text, dir: "auto" }));
  $("#messages").append(li);
  li.scrollIntoView({ block: "end" });
}

function system(key, vars, cls) {
  const li = say(h("li", { class: "sys" + (cls ? " " + cls : "") }), key, vars);
  if (cls === "alert") li.setAttribute("role", "alert");
  $("#messages").append(li);
  li.scrollIntoView({ block: "end" });
}

function send() {
  const input = $("#message-input");
  const text = input.value.trim();
  if (!text || !client || !session) return;
  // The deployment's code word is the silent signal, never sent as words.
  if (notSafeWord && text.toLocaleLowerCase() === notSafeWord) {
    input.value = "";
    return notSafe();
  }
  try {
    client.sendText(session, text);
  } catch (e) {
    // A full backlog says so itself (an event); the words stay in the input.
    driver.pump();
    if ($("#status").dataset.i18n !== "backlog_full") status("error_generic", 4000);
    return;
  }
  input.value = "";
  addMessage("me", text);
  driver.pump();
}

$("#send").addEventListener("click", send);
$("#message-input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.isComposing) { e.preventDefault(); send(); }
});

$("#safety-code").addEventListener("click", (e) => {
  const help = $("#code-help");
  help.hidden = !help.hidden;
  e.currentTarget.setAttribute("aria-expanded", String(!help.hidden));
});

// "End conversation" asks first, in the page (never window.confirm, which blocks and
// cannot be translated or styled); Cancel keeps everything. Not a modal dialog: a modal
// would make the quick exit button inert, and the quick exit never asks or waits.
$("#end").addEventListener("click", () => {
  const d = $("#end-confirm");
  if (!d.open) d.show();
  $("#end-cancel").focus();
});
$("#end-cancel").addEventListener("click", () => { $("#end-confirm").close(); $("#end").focus(); });
$("#end-confirm").addEventListener("keydown", (e) => {
  if (e.key === "Escape") { $("#end-confirm").close(); $("#end").focus(); }
});
$("#end-yes").addEventListener("click", () => {
  $("#end-confirm").close();
  finish("session_ended");
});

// --- "I can't talk now": staff are told silently, the screen shows only a clock

function notSafe() {
  if (client && session) {
    try { client.signalNotSafe(session); driver.pump(); } catch (e) { console.warn("signal:", e.message); }
  }
  body.dataset.neutral = "";
  $("#neutral").hidden = false;
  // Focus on the clock itself: nothing of the conversation keeps it, and a keyboard user
  // returns with Enter or Space as a tap does.
  $("#neutral").focus();
  document.title = "\u{1F552}";
  showClock();
}

function leaveNeutral() {
  delete body.dataset.neutral;
  $("#neutral").hidden = true;
  document.title = t("app_title");
  $("#message-input")?.focus();
}

function showClock() {
  if (!("neutral" in body.dataset)) return;
  const now = new Date();
  $("#neutral-time").textContent = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" }).format(now);
  $("#neutral-date").textContent = new Intl.DateTimeFormat(lang, { weekday: "long", day: "numeric", month: "long" }).format(now);
}
setInterval(showClock, 10000);

$("#not-safe").addEventListener("click", notSafe);
$("#neutral").addEventListener("click", leaveNeutral);
$("#neutral").addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); leaveNeutral(); }
});

// --- calls

const callHooks = {
  change: showCall,
  notice: (key) => status(key, key === "call_video_possible" ? 10000 : 6000),
  label: (p) => (staff.has(p) ? t(staff.get(p)) : ""),
};

/** The call buttons and view follow the call's state and the staff's. */
function showCall() {
  if (exited) return;
  const inCall = !!call?.active;
  const others = call ? call.others.filter((p) => staff.has(p)) : [];
  const nowInvited = !inCall && others.length > 0;
  if (nowInvited && !invited) declined = false; // a new invitation
  invited = nowInvited;
  const operator = [...staff.values()].includes("operator");
  $("#call-offer").hidden = inCall || !operator || !session || !callApi?.callSupported();
  // A call the person started rings until a staff member is in it.
  $("#call-calling").hidden = !inCall || others.length > 0;
  $("#call-invite").hidden = !invited || declined;
  $("#not-now").hidden = !invited || declined;
  $("#call-offer").classList.toggle("ringing", invited && !declined);
  $("#call-view").hidden = !inCall;
  if (!call) return;
  say($("#mute"), call.muted ? "unmute" : "mute").setAttribute("aria-pressed", String(call.muted));
  say($("#camera"), call.cameraOn ? "camera_off" : "camera_on");
  $("#camera").disabled = call.state === "idle";
  $("#call-audio-only").hidden = call.cameraOn;
}

function startCall(video) {
  if (!call || call.active) return;
  declined = false;
  call.start({ video });
}

$("#voice-call").addEventListener("click", () => startCall(false));
$("#video-call").addEventListener("click", () => startCall(true));
$("#not-now").addEventListener("click", () => { declined = true; showCall(); });
$("#mute").addEventListener("click", () => call?.setMuted(!call.muted));
$("#camera").addEventListener("click", () => call?.setCamera(!call.cameraOn));
$("#hang-up").addEventListener("click", () => call?.hangUp());

/** The conversation is over: end it if still open, drop every secret, say why. */
function finish(key) {
  if ($("#end-confirm").open) $("#end-confirm").close();
  lastCode = null;
  forgetRejoin();
  stop(true);
  staff.clear();
  invited = declined = false;
  showCall();
  status(null);
  $("#messages").replaceChildren();
  say($("#ended-text"), key).classList.toggle("alert", key !== "session_ended");
  state("ended");
}

/**
 * Create the client and open the connection (once). Done early, while the person reads and
 * chooses, so that Start costs one round trip on a slow network instead of three; the
 * relay learns nothing it did not know from the page load itself.
 */
function connect(Approdo, c) {
  if (client || exited) return;
  client = Approdo.person(c.org);
  // The revocation list the bundle-hashed configuration carries: a relay cannot roll back.
  if (c.revocations) client.addRevocations(c.revocations);
  if (c.desks?.[0]?.id) client.setNationalDesk(c.desks[0].id);
  driver = new Driver(client, {
    onEvent,
    onOpen: () => {
      // Until the relay confirms a session there is nothing to resume: ask (again).
      if (!session) requested = false;
      if (wanted) requestSession();
      else client.ping(); // the relay closes connections that stay silent
    },
    onStatus: (s) => status(s === "open" || !wanted ? null : "reconnecting"),
  });
  driver.connect();
}

/** Ask the relay for the session, once, when both the person and the connection are ready. */
function requestSession() {
  if (!wanted || requested || session || !client || !driver?.isOpen()) return;
  requested = true;
  client.setIntake(wanted.seeker);
  if (rejoining) {
    // The same seat after a reload, with new keys: staff see the person reconnected.
    client.rejoin(rejoining.session, rejoining.token);
    adopt(rejoining.session);
    rejoining = null;
    driver.pump();
    return;
  }
  client.openSession(lang, wanted.region);
  driver.pump();
}

// After a reload mid-conversation: the same language and seat, straight back in.
if (rejoining) {
  const saved = rejoining;
  wanted = { seeker: saved.seeker || "myself", region: saved.region || null };
  chooseLanguage(saved.lang || "en").then(() => {
    state("waiting");
    say($("#connecting"), "connecting").hidden = false;
    showParticipants();
  });
}

// Warm up while the person reads and chooses: the core, the configuration, the connection.
setTimeout(() => {
  Promise.all([loadCore(), config()])
    .then(([Approdo, c]) => {
      body.dataset.core = "ready"; // lets tests measure load time apart from taps
      connect(Approdo, c);
    })
    .catch(() => {});
}, 0);
