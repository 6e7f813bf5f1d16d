// The staff desk: operators, interpreters and coordinators. The credential is opened
// inside the wasm object and never kept anywhere else; conversations live in this
// page's memory only and are dropped when a session ends and is dismissed, or on Lock.
import { $, h, config, loadCore, Driver, freeClient } from "/common.js";
import { Call, callSupported } from "/call.js";

const LANGUAGES = {
  it: "Italian", en: "English", fr: "French", es: "Spanish", ro: "Romanian", ru: "Russian",
  uk: "Ukrainian", zh: "Chinese", sq: "Albanian", ar: "Arabic", pcm: "Nigerian Pidgin", ur: "Urdu",
};
const ACTIVATORS = {
  person: "The person themself", "cas-sprar": "Reception centre (CAS / SPRAR)",
  prefecture: "Prefecture", "territorial-commission": "Territorial Commission",
  police: "Police or Carabinieri", labour: "Labour inspector or union",
  "social-health": "Social or health services, ER", "street-unit": "Street unit",
  "private-citizen": "Private citizen",
};
const GENDERS = { female: "Female", male: "Male", transgender: "Transgender", unknown: "Unknown" };
const AGES = { "under-18": "Under 18", "18-25": "18–25", "26-35": "26–35", "36-50": "36–50", "over-50": "Over 50", unknown: "Unknown" };
const EXPLOITATION = {
  "sexual-street": "Sexual — street", "sexual-indoor": "Sexual — indoor",
  "labour-construction": "Labour — construction", "labour-agriculture": "Labour — agriculture",
  "labour-catering": "Labour — catering", "labour-domestic-care": "Labour — domestic and care work",
  begging: "Begging", "forced-illegal-activities": "Forced illegal activities",
  "forced-marriage": "Forced marriage", "not-identified": "Not identified",
};
const OUTCOMES = {
  counselling: "Counselling", interview: "Interview with the person",
  shelter: "Immediate shelter and first assistance", "multi-agency": "Multi-agency proactive action",
  referral: "Referral to a regional project",
};

const body = document.body;
let client = null;
let driver = null;
let role = null;
let desks = []; // [{id, name}] from /config.json
const sessions = new Map(); // session id -> conversation state (below)
let active = null; // the session shown in #chat
let queue = [];
let invitations = [];
let queueTotal = 0;
let invitationTotal = 0;
// What each membership alarm means, for the operator.
const ALARMS = {
  "second-person": (ev) => `ALARM: the relay announced a second anonymous participant (${ev.peer}). It was refused and is sent nothing. The real person is participant 1.`,
  "roster-mismatch": (ev) => `ALARM: participant ${ev.peer} sees different participants or keys than you. Do not share anything new until the safety codes match.`,
  "unknown-member": (ev) => `ALARM: participant ${ev.peer} mentioned a participant (${ev.unknown}) the relay never showed you. Someone may be listening.`,
  "roster-unconfirmed": (ev) => `ALARM: participant ${ev.peer} was not confirmed by everyone in time: nothing was sent to them.`,
};
// Roster confirmations that never come turn into alarms with time.
setInterval(() => {
  if (!client || !driver) return;
  client.handleTimeout(Date.now() / 1000);
  driver.pump();
}, 1000);
const known = new Map(); // session id -> {language, desk}, from the queue or an invitation
const CALL_NOTICES = {
  call_audio_fallback: "The connection is weak: your camera was turned off (audio only).",
  call_video_possible: "The connection is better again: you can turn your camera back on.",
  call_failed: "The call could not connect (or broke off). The chat goes on.",
  call_ended: "The call has ended. The chat goes on.",
  call_no_support: "This browser cannot make end-to-end encrypted calls.",
};

const langName = (c) => LANGUAGES[c] || c;
const deskName = (id) => desks.find((d) => d.id === id)?.name || id;
const options = (map, selected) =>
  Object.entries(map).map(([v, text]) => h("option", { value: v, text, selected: v === selected }));
const mmss = (s) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;

let statusTimer = 0;
function notice(text, ms = 6000) {
  const el = $("#desk-status");
  clearTimeout(statusTimer);
  el.textContent = text;
  el.hidden = !text;
  if (text && ms) statusTimer = setTimeout(() => { el.hidden = true; }, ms);
}

/** Run an action on the core, report its error code, then flush. */
function act(what, f) {
  try {
    f();
  } catch (e) {
    notice(`${what} failed (${e.message}).`);
    return false;
  } finally {
    driver?.pump();
  }
  return true;
}

// --- login

config().then((c) => { desks = c.desks || []; }).catch(() => {});
loadCore().catch(() => {});

$("#login").addEventListener("click", async () => {
  const file = $("#credential-file").files[0];
  const pass = $("#passphrase");
  const err = $("#login-error");
  err.hidden = true;
  if (!file) { err.textContent = "Choose your credential file."; err.hidden = false; return; }
  $("#login").disabled = true;
  try {
    const [Approdo, c, text] = await Promise.all([loadCore(), config(), file.text()]);
    desks = c.desks || [];
    client = Approdo.staff(c.org, text, pass.value);
  } catch (e) {
    err.textContent = e.message === "credential"
      ? "Could not open the credential: wrong passphrase, or not a credential file."
      : `Could not start (${e.message}).`;
    err.hidden = false;
    $("#login").disabled = false;
    return;
  } finally {
    // The secret is inside the wasm object now; do not leave copies in the form.
    pass.value = "";
  }
  $("#credential-file").value = "";
  $("#conn").textContent = "Connecting…";
  driver = new Driver(client, {
    onEvent,
    onOpen: (reopen) => { if (!reopen) client.login(); },
    onStatus: (s) => { $("#conn").textContent = s === "open" ? "Online" : "Connection lost — reconnecting…"; },
  });
  driver.connect();
});

$("#passphrase").addEventListener("keydown", (e) => { if (e.key === "Enter") $("#login").click(); });

function loggedIn() {
  role = client.role();
  const label = client.label();
  $("#whoami").textContent = `${label || "Staff"} — ${role}`;
  $("#lock").hidden = false;
  $("#operator-pane").hidden = role !== "operator";
  $("#interpreter-pane").hidden = role !== "interpreter";
  $("#sessions-pane").hidden = role === "coordinator";
  $("#coordinator-pane").hidden = role !== "coordinator";
  if (role === "interpreter") {
    $("#my-languages").textContent = "Your languages: " + client.languages().map(langName).join(", ");
  }
  buildRecordForm();
  $("#transfer-desk").replaceChildren(...desks.map((d) => h("option", { value: d.id, text: d.name })));
  body.dataset.state = "desk";
}

function backToLogin(message) {
  driver?.close();
  freeClient(client);
  driver = client = null;
  body.dataset.state = "login";
  $("#login").disabled = false;
  $("#conn").textContent = "";
  const err = $("#login-error");
  err.textContent = message;
  err.hidden = false;
}

// Lock: leave every conversation (so nobody waits on a desk that is gone), then drop
// the client and reload to a blank desk.
$("#lock").addEventListener("click", () => {
  for (const s of sessions.values()) s.call.stop();
  for (const s of sessions.values()) {
    if (!s.ended) try { client?.leave(s.id); } catch { /* gone */ }
  }
  driver?.close();
  freeClient(client);
  driver = client = null;
  sessions.clear();
  location.reload();
});

// --- events

function onEvent(ev) {
  const s = ev.session && sessions.get(ev.session);
  if (s) s.call.onEvent(ev);
  switch (ev.type) {
    case "logged-in":
      if (body.dataset.state !== "desk") loggedIn();
      else notice("Reconnected.", 3000);
      break;
    case "queue":
      queue = ev.entries || [];
      queueTotal = ev.total ?? queue.length;
      for (const e of queue) known.set(e.session, e);
      renderLists();
      break;
    case "invitations":
      invitations = ev.entries || [];
      invitationTotal = ev.total ?? invitations.length;
      for (const e of invitations) known.set(e.session, e);
      renderLists();
      break;
    case "joined":
      openConversation(ev.session);
      break;
    case "peer-arrived":
      if (s && !s.peers.has(ev.peer)) s.peers.set(ev.peer, { state: "arriving" });
      break;
    case "peer-verified":
      if (s) {
        const again = s.peers.get(ev.peer)?.state === "verified";
        s.peers.set(ev.peer, { state: "verified", role: ev.role, label: ev.label });
        if (!again) line(s, `${who(s, ev.peer)} joined (verified).`);
      }
      break;
    case "membership-alarm":
      if (s) {
        s.alarm = true;
        line(s, ALARMS[ev.alarm]?.(ev) || "ALARM: the session's membership cannot be trusted.", "alert");
        notice("Membership alarm in a session: see the conversation.", 10000);
      }
      break;
    case "roster-agreed":
      if (s) {
        const names = ev.members.filter((m) => s.peers.has(m)).map((m) => who(s, m));
        const text = `Everyone confirmed the same participants: you${names.length ? ", " + names.join(", ") : ""}.`;
        if (text !== s.lastRoster) line(s, text);
        s.lastRoster = text;
      }
      break;
    case "channel-restarted":
      if (s) {
        // The person is always participant 1.
        line(s, ev.peer === 1
          ? "The person reconnected — new keys. Messages in between may be lost. Compare the safety code again."
          : `The channel with ${who(s, ev.peer)} was re-established with new keys. Messages in between may be lost. Compare the safety code again.`, "alert");
      }
      break;
    case "peer-rejected":
      if (s) {
        const p = s.peers.get(ev.peer) || {};
        s.peers.set(ev.peer, { ...p, state: "rejected" });
        line(s, `Verification FAILED for participant ${ev.peer}: nothing is sent to them.`, "alert");
      }
      break;
    case "peer-left":
      if (s) {
        line(s, `${who(s, ev.peer)} left.`);
        s.peers.delete(ev.peer);
      }
      break;
    case "message":
      if (s) add(s, { from: ev.from, body: ev.body, private: ev.private });
      break;
    case "safety-code":
      if (s) {
        if (ev.state === "ready" && s.lastReadyCode && ev.code !== s.lastReadyCode) {
          line(s, "The safety code changed (someone joined, left or reconnected): compare it again.");
        }
        if (ev.state === "ready") s.lastReadyCode = ev.code;
        s.code = { state: ev.state, code: ev.code };
      }
      break;
    case "call-members":
      if (s) {
        const names = s.call.others.map((p) => who(s, p));
        const was = s.callNames || [];
        if (names.join() !== was.join()) line(s, names.length ? `In the call: ${names.join(", ")}.` : "Nobody else is in the call.");
        s.callNames = names;
      }
      break;
    case "undecryptable":
      if (s) line(s, `A message from participant ${ev.peer} could not be decrypted and was dropped.`, "alert");
      break;
    case "intake":
      if (s) s.intake = ev.seeker;
      break;
    case "handover-note":
      if (s) s.note = { desk: ev.desk, body: ev.body, from: ev.from };
      break;
    case "resumed":
      notice(ev.intact ? "Connection restored; no message was lost."
        : "Connection restored; some messages may have been lost (see the conversation).", 5000);
      break;
    case "session-ended":
      if (s) {
        // The record can still be filed (the relay allows it for an hour).
        s.closable = role === "operator" && !s.transfer;
        ended(s, "The session has ended.");
      }
      break;
    case "relay-error":
      if (ev.code === "auth-failed") return backToLogin("The relay refused this credential (unknown, expired or revoked).");
      if (ev.code === "replaced") return backToLogin("This desk was opened on another screen with your session, so it was closed here.");
      if (ev.code === "quota-exceeded") {
        notice("A participant who was away too long was removed from a session: the relay could not keep more messages for them.", 10000);
        break;
      }
      notice(`The relay refused the last action: ${ev.code}.`);
      break;
    case "observatory":
      renderObservatory(ev);
      break;
  }
  reconcile();
  if (s || ev.type === "joined") renderChat();
}

/** The core leaves a transferred case by itself once the new operator is verified. */
function reconcile() {
  if (!client) return;
  const live = new Set(client.sessions());
  for (const s of sessions.values()) {
    if (s.ended || live.has(s.id)) continue;
    ended(s, s.transfer
      ? `Handed over to ${deskName(s.transfer)}: a colleague there has the case now.`
      : "You are no longer in this session.");
    renderTabs();
    if (s.id === active) renderChat();
  }
}

// --- conversations

function openConversation(id) {
  if (sessions.has(id)) return;
  const k = known.get(id) || {};
  sessions.set(id, {
    id, language: k.language, desk: k.desk,
    peers: new Map(), // participant id -> {state: arriving|verified|rejected, role, label}
    items: [], // {from, body, private} or {line, cls}
    code: { state: "pending", code: null },
    intake: null, note: null, transfer: null, ended: null, unread: 0,
  });
  const s = sessions.get(id);
  s.call = new Call({
    session: id, client, pump: () => driver?.pump(),
    hooks: {
      change: renderCall,
      notice: (key) => notice(CALL_NOTICES[key] || "", key === "call_video_possible" ? 10000 : 6000),
      label: (p) => who(s, p),
    },
  });
  if (!active) switchTo(id);
}

/** Show another conversation: rebuild what depends on which one is shown. */
function switchTo(id) {
  active = id;
  const s = sessions.get(id);
  $("#record-form").hidden = true;
  $("#messages").replaceChildren();
  if (!s) return;
  for (const it of s.items) appendItem(s, it);
  const langs = { ...LANGUAGES };
  if (s.language && !langs[s.language]) langs[s.language] = s.language;
  $("#invite-language").replaceChildren(...options(langs, s.language));
}

function who(s, peer) {
  const p = s.peers.get(peer);
  if (!p || p.state !== "verified") return `Participant ${peer} (unverified)`;
  if (!p.role) return "Person";
  return `${p.role === "operator" ? "Operator" : "Interpreter"}${p.label ? " " + p.label : ""}`;
}

function fromAttr(s, peer) {
  if (peer === "me") return "me";
  const p = s.peers.get(peer);
  return p?.role || "person";
}

function add(s, item) {
  s.items.push(item);
  if (s.id === active) appendItem(s, item);
  else { s.unread++; renderTabs(); }
}

function line(s, text, cls) { add(s, { line: text, cls }); }

function ended(s, why) {
  if (s.ended) return;
  s.call.stop();
  s.ended = why;
  s.items.push({ line: why });
}

function appendItem(s, it) {
  const list = $("#messages");
  let li;
  if (it.line) {
    li = h("li", { class: "sys " + (it.cls || ""), text: it.line });
  } else {
    li = h("li", { class: "msg" + (it.private ? " private" : ""), dataset: { from: fromAttr(s, it.from) } },
      h("span", { class: "who", text: (it.from === "me" ? "You" : who(s, it.from)) + (it.private ? " — PRIVATE (staff only)" : "") }),
      h("p", { text: it.body, dir: "auto" }));
  }
  list.append(li);
  li.scrollIntoView({ block: "nearest" });
}

// Tabs are updated in place, so a tab being clicked is not replaced under the pointer.
function renderTabs() {
  const nav = $("#sessions");
  const old = new Map([...nav.children].map((b) => [b.dataset.session, b]));
  nav.replaceChildren(...[...sessions.values()].map((s) => {
    const b = old.get(s.id) || h("button", { type: "button", class: "tab", dataset: { session: s.id } });
    b.textContent = `${langName(s.language || "?")} · ${s.id.slice(0, 6)}${s.unread ? ` (${s.unread} new)` : ""}${s.ended ? " — ended" : ""}`;
    if (s.id === active) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
    return b;
  }));
}

$("#sessions").addEventListener("click", (e) => {
  const b = e.target.closest("[data-session]");
  if (!b) return;
  switchTo(b.dataset.session);
  renderChat();
});

function renderChat() {
  const s = sessions.get(active);
  $("#chat").hidden = !s;
  if (!s) return renderTabs();
  s.unread = 0;
  const operator = role === "operator";
  $("#chat-title").textContent = `${langName(s.language) || "Session"} · ${deskName(s.desk || "")} · ${s.id.slice(0, 8)}`;
  $("#intake").textContent = s.intake == null ? "Intake: not received yet."
    : s.intake === "myself" ? "Intake: asking for themself."
    : `Intake: worker — ${ACTIVATORS[s.intake] || s.intake}.`;

  const code = $("#safety-code");
  code.textContent = s.code.state === "ready" ? s.code.code
    : s.code.state === "mismatch" ? "MISMATCH — someone may be in the middle; do not go on." : "pending…";
  code.classList.toggle("alert", s.code.state === "mismatch");

  $("#participants").replaceChildren(
    h("li", { text: `You (${role}${client?.label() ? ", " + client.label() : ""})` }),
    ...[...s.peers.entries()].map(([id, p]) => h("li", { class: "st-" + p.state },
      p.state === "verified"
        ? [who(s, id), " ", h("span", { class: "verified", text: p.role ? "✓ certified staff" : "✓ channel verified" })]
        : p.state === "rejected" ? `Participant ${id} — VERIFICATION FAILED` : `Participant ${id} — verifying…`)),
  );

  const note = $("#handover-note");
  note.hidden = !s.note;
  if (s.note) {
    note.replaceChildren(h("strong", { text: `Handover note for ${deskName(s.note.desk)} from the previous operator:` }),
      h("p", { text: s.note.body }));
  }

  // Private side-conversation: operator <-> interpreter, never the person.
  const other = operator ? "interpreter" : "operator";
  const targets = staffPeers(s, other);
  $("#private-label").hidden = !targets.length || !!s.ended;
  $("#private-text").textContent = `Private to ${other}`;
  if (!targets.length) $("#private").checked = false;

  $("#composer").hidden = !!s.ended;
  $("#ended-note").hidden = !s.ended;
  $("#ended-note").textContent = s.ended || "";
  $("#operator-tools").hidden = !operator || (!!s.ended && !s.closable);
  for (const el of document.querySelectorAll("#operator-tools .live-only, #end-session")) el.hidden = !!s.ended;
  $("#interpreter-tools").hidden = role !== "interpreter" || !!s.ended;
  $("#dismiss").hidden = !s.ended;
  renderTabs();
  renderCall();
}

// --- calls: one at a time (one camera, one microphone), in any of the sessions

const inCall = () => [...sessions.values()].find((x) => x.call.active) || null;

function renderCall() {
  const s = sessions.get(active);
  const current = inCall();
  const start = $("#start-call");
  if (s) {
    const others = s.call.others.length > 0;
    start.hidden = s.call.active || !!s.ended;
    start.textContent = others || role !== "operator" ? "Join call" : "Start call";
    // An interpreter joins a call the operator started; nobody takes two calls at once.
    start.disabled = !!current || !callSupported() || (role !== "operator" && !others);
    $("#call-status").textContent = s.call.active ? "" : !callSupported() ? "Calls need a browser with encoded-frame transforms."
      : current ? "You are in a call in another session." : others ? `Call in progress: ${s.call.others.map((p) => who(s, p)).join(", ")}.` : "";
  }
  const view = $("#call-view");
  view.hidden = !current;
  if (!current) return;
  const tiles = $("#call-tiles");
  if (tiles.firstChild !== current.call.view) tiles.replaceChildren(current.call.view);
  current.call.redrawTiles();
  $("#call-session").textContent = current.id.slice(0, 8);
  $("#call-safety-code").textContent = current.code.state === "ready" ? current.code.code : "pending…";
  $("#mute").textContent = current.call.muted ? "Unmute" : "Mute";
  $("#mute").setAttribute("aria-pressed", String(current.call.muted));
  $("#camera").textContent = current.call.cameraOn ? "Turn camera off" : "Turn camera on";
  $("#call-audio-only").hidden = current.call.cameraOn;
  $("#hang-up").textContent = role === "operator" ? "Hang up" : "Leave call";
}

$("#start-call").addEventListener("click", () => {
  const s = sessions.get(active);
  if (!s || s.ended || inCall()) return;
  // Staff start with the camera on; the person's stays off until they choose.
  s.call.start({ video: true });
});
$("#mute").addEventListener("click", () => { const c = inCall()?.call; c?.setMuted(!c.muted); });
$("#camera").addEventListener("click", () => { const c = inCall()?.call; c?.setCamera(!c.cameraOn); });
$("#hang-up").addEventListener("click", () => inCall()?.call.hangUp());

const staffPeers = (s, r) => [...s.peers.entries()]
  .filter(([, p]) => p.state === "verified" && p.role === r).map(([id]) => id);

function sendMessage() {
  const s = sessions.get(active);
  const input = $("#message-input");
  const text = input.value.trim();
  if (!s || s.ended || !text) return;
  const priv = $("#private").checked && !$("#private-label").hidden;
  const ok = act("Sending", () => {
    if (!priv) return client.sendText(s.id, text);
    const to = staffPeers(s, role === "operator" ? "interpreter" : "operator");
    if (!to.length) throw new Error("nobody to send to privately");
    for (const peer of to) client.sendPrivate(s.id, peer, text);
  });
  if (!ok) return;
  input.value = "";
  add(s, { from: "me", body: text, private: priv });
}

$("#send").addEventListener("click", sendMessage);
$("#message-input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendMessage(); }
});

// --- queue and invitations

function renderLists() {
  fill("#queue", queue, "Accept", queueTotal);
  fill("#invitations", invitations, "Join", invitationTotal);
}

function fill(table, entries, verb, total) {
  $(table + " tbody").replaceChildren(...entries.map((e) => h("tr", { dataset: { session: e.session } },
    h("td", { text: langName(e.language) }),
    h("td", { text: deskName(e.desk) }),
    h("td", { class: "wait", dataset: { since: Date.now() - (e.waitingSecs || 0) * 1000 } }),
    h("td", {}, h("button", { type: "button", class: "primary", dataset: { session: e.session }, text: verb })))));
  const section = $(table).closest("section");
  section.querySelector(".empty").hidden = entries.length > 0;
  // The relay sends the oldest entries only (at most 50) and the total.
  let more = section.querySelector(".more");
  if (!more) section.append(more = h("p", { class: "more" }));
  more.hidden = total <= entries.length;
  more.textContent = `Showing the ${entries.length} oldest of ${total}.`;
  tick();
}

// Waiting times keep running between updates; only the text changes, so a button
// being pressed is never replaced under the pointer.
function tick() {
  const now = Date.now();
  for (const td of document.querySelectorAll("td.wait")) {
    td.textContent = mmss(Math.max(0, Math.floor((now - Number(td.dataset.since)) / 1000)));
  }
}
setInterval(tick, 1000);

$("#queue").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-session]");
  if (b) { b.disabled = true; act("Accept", () => client.accept(b.dataset.session)); }
});
$("#invitations").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-session]");
  if (b) { b.disabled = true; act("Join", () => client.join(b.dataset.session)); }
});

// --- operator tools

$("#invite").addEventListener("click", () => {
  const s = sessions.get(active);
  const language = $("#invite-language").value;
  if (s && act("Invite", () => client.invite(s.id, language))) {
    line(s, `Interpreter invited for ${langName(language)}.`);
  }
});

$("#transfer").addEventListener("click", () => {
  const s = sessions.get(active);
  const desk = $("#transfer-desk").value;
  const note = $("#transfer-note").value;
  if (s && desk && act("Transfer", () => client.transfer(s.id, desk, note))) {
    s.transfer = desk;
    $("#transfer-note").value = "";
    line(s, `Transfer to ${deskName(desk)} requested. You stay until a colleague there accepts; your note is then sent to them end-to-end.`);
  }
});

$("#end-session").addEventListener("click", () => {
  const s = sessions.get(active);
  if (s && act("End", () => client.end(s.id))) {
    ended(s, "You ended the session.");
    renderChat();
  }
});

$("#leave-session").addEventListener("click", () => {
  const s = sessions.get(active);
  if (s && act("Leave", () => client.leave(s.id))) {
    ended(s, "You left the session.");
    renderChat();
  }
});

$("#dismiss").addEventListener("click", () => {
  sessions.get(active)?.call.stop();
  sessions.delete(active);
  switchTo(sessions.keys().next().value || null);
  renderChat();
});

$("#close-case").addEventListener("click", () => {
  const form = $("#record-form");
  form.hidden = !form.hidden;
  if (form.hidden) return;
  // Preselect who activated the contact from what the person said at intake.
  const s = sessions.get(active);
  if (s?.intake) form.elements.activator.value = s.intake === "myself" ? "person" : s.intake;
  $("#record-error").hidden = true;
  form.scrollIntoView({ block: "nearest" });
});

function buildRecordForm() {
  const regions = { unknown: "Unknown" };
  for (const d of desks.slice(1)) regions[d.id] = d.name; // the first desk is national
  const field = (name, label, map, selected) => h("label", {}, label,
    h("select", { name }, ...options(map, selected)));
  $("#record-form .fields").replaceChildren(
    field("gender", "Gender", GENDERS, "unknown"),
    field("age", "Age", AGES, "unknown"),
    field("emerged", "Territory where the case emerged", regions, "unknown"),
    field("exploited", "Territory of exploitation", regions, "unknown"),
    field("activator", "Who activated the contact", ACTIVATORS, "person"),
    field("outcome", "Outcome", { "": "Choose…", ...OUTCOMES }, ""),
  );
  $("#exploitation").replaceChildren($("#exploitation legend"),
    ...Object.entries(EXPLOITATION).map(([v, text]) =>
      h("label", { class: "inline" }, h("input", { type: "checkbox", name: "exploitation", value: v }), " " + text)));
}

// Enter in a field must not submit: this page never navigates (CSP form-action 'none').
$("#record-form").addEventListener("submit", (e) => e.preventDefault());

$("#record-submit").addEventListener("click", () => {
  const s = sessions.get(active);
  const f = $("#record-form").elements;
  const err = $("#record-error");
  if (!s) return;
  if (!f.outcome.value) { err.textContent = "Choose the outcome."; err.hidden = false; return; }
  const checked = [...$("#record-form").querySelectorAll("input[name=exploitation]:checked")].map((i) => i.value);
  const region = (v) => (v === "unknown" ? null : v);
  const record = {
    gender: f.gender.value,
    age: f.age.value,
    emerged: region(f.emerged.value),
    exploited: region(f.exploited.value),
    exploitation: checked.length ? checked : ["not-identified"],
    activator: f.activator.value,
    outcome: f.outcome.value,
  };
  if (act("Close case", () => client.closeCase(s.id, JSON.stringify(record)))) {
    $("#record-form").reset();
    $("#record-form").hidden = true;
    s.closable = false;
    if (s.ended) line(s, "Observatory record filed.");
    ended(s, "Case closed and the observatory record filed.");
    renderChat();
  }
});

// --- coordinator

$("#load-observatory").addEventListener("click", () => act("Observatory query", () => client.queryObservatory()));

// Every string of the coordinator's pane, in one place (for the desk's translations).
const OBS_TEXT = {
  suppressed: "<5",
  cases: "Cases",
  month: "Month",
  allMonths: "All months",
  value: "Value",
  byMonth: "Cases by month",
  noTerritory: "Not stated",
  empty: "No case has been filed yet.",
  chart: (title) => `Chart: ${title}`,
  summary: (cases, months) => `${cases} case(s) in ${months} month(s). Counts below 5 are shown as <5, and some larger ones are withheld too so that no small count can be worked out from the others.`,
  multi: "A case with several types of exploitation counts once under each, so these counts do not add up to the cases.",
  csv: "CSV of the tables above",
  download: "Download CSV",
  dimensions: {
    emerged: "Territory where the case emerged", exploited: "Territory of exploitation",
    exploitation: "Type of exploitation", gender: "Gender", age: "Age band",
    activator: "Who activated the contact", outcome: "Outcome",
  },
};
const OBS_VALUES = { gender: GENDERS, age: AGES, exploitation: EXPLOITATION, activator: ACTIVATORS, outcome: OUTCOMES };
const SVG_NS = "http://www.w3.org/2000/svg";
let csvUrl = null;

const obsCell = (n) => (n == null ? OBS_TEXT.suppressed : String(n));
function obsLabel(dimension, code) {
  if (dimension === "emerged" || dimension === "exploited") return code === "none" ? OBS_TEXT.noTerritory : deskName(code);
  return OBS_VALUES[dimension]?.[code] || code;
}

// One table: a caption, a header row and labelled rows of counts (null is suppressed).
function obsTable(title, header, rows, key) {
  return h("table", { class: "counts", dataset: { table: key } },
    h("caption", { text: title }),
    h("thead", {}, h("tr", {}, header.map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, rows.map(([label, cells]) => h("tr", {},
      h("th", { scope: "row", text: label }),
      cells.map((n) => h("td", { class: n == null ? "suppressed" : null, text: obsCell(n) }))))));
}

// A horizontal bar chart drawn as SVG (classes only, no style): one bar per row; a
// suppressed count gets no bar, only "<5".
function obsChart(title, rows) {
  const svg = (tag, attrs, text) => {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text != null) el.textContent = text;
    return el;
  };
  const labelW = 320, barW = 320, rowH = 22, max = Math.max(1, ...rows.map(([, n]) => n || 0));
  const chart = svg("svg", { class: "obs-chart", role: "img", "aria-label": OBS_TEXT.chart(title),
    viewBox: `0 0 ${labelW + barW + 50} ${rows.length * rowH + 4}`, width: labelW + barW + 50, height: rows.length * rowH + 4 });
  chart.append(svg("title", {}, OBS_TEXT.chart(title)));
  rows.forEach(([label, n], i) => {
    const y = i * rowH + 2;
    chart.append(svg("text", { class: "obs-label", x: labelW - 6, y: y + 15, "text-anchor": "end" }, label));
    const w = n == null ? 0 : Math.max(1, Math.round((n / max) * barW));
    if (n != null) chart.append(svg("rect", { class: "obs-bar", x: labelW, y: y + 3, width: w, height: rowH - 6 }));
    chart.append(svg("text", { class: n == null ? "obs-value suppressed" : "obs-value", x: labelW + w + 6, y: y + 15 }, obsCell(n)));
  });
  return chart;
}

// CSV of the tables as shown: each table's caption, then its header and rows, read from
// the page itself so the export cannot differ from the screen.
function obsCsv(tables) {
  const field = (t) => (/[",\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t);
  return tables.map((t) => [
    field(t.caption.textContent),
    ...[...t.rows].map((r) => [...r.cells].map((c) => field(c.textContent)).join(",")),
  ].join("\n")).join("\n\n") + "\n";
}

function renderObservatory(answer) {
  const months = answer.months || [];
  const out = [h("p", { text: months.length ? OBS_TEXT.summary(obsCell(answer.cases), months.length) : OBS_TEXT.empty })];
  const tables = [];
  const section = (title, header, rows, chartRows, key, note) => {
    const table = obsTable(title, header, rows, key);
    tables.push(table);
    out.push(h("section", { class: "obs-section" }, h("h3", { text: title }), note ? h("p", { class: "small", text: note }) : null,
      obsChart(title, chartRows), table));
  };
  if (months.length) {
    const byMonth = months.map((m, i) => [m, answer.byMonth[i]]);
    section(OBS_TEXT.byMonth, [OBS_TEXT.month, OBS_TEXT.cases], byMonth.map(([m, n]) => [m, [n]]), byMonth, "month");
    for (const t of answer.tables || []) {
      const title = OBS_TEXT.dimensions[t.dimension] || t.dimension;
      const labels = t.values.map((v) => obsLabel(t.dimension, v));
      const rows = labels.map((label, i) => [label, [t.total[i], ...months.map((_, m) => t.byMonth[m][i])]]);
      section(title, [OBS_TEXT.value, OBS_TEXT.allMonths, ...months], rows, labels.map((l, i) => [l, t.total[i]]), t.dimension,
        t.dimension === "exploitation" ? OBS_TEXT.multi : null);
    }
    const csv = obsCsv(tables);
    if (csvUrl) URL.revokeObjectURL(csvUrl);
    csvUrl = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
    out.push(h("section", { class: "obs-section obs-csv" },
      h("label", { for: "observatory-csv", text: OBS_TEXT.csv }),
      h("textarea", { id: "observatory-csv", readOnly: true, rows: 8, value: csv }),
      h("a", { id: "observatory-csv-download", href: csvUrl, download: `observatory-${months[0]}-${months[months.length - 1]}.csv`, text: OBS_TEXT.download })));
  }
  $("#observatory").replaceChildren(...out);
}
