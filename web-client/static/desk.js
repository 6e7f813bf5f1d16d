// The staff desk: operators, interpreters and coordinators. The credential is opened
// inside the wasm object and never kept anywhere else; conversations live in this
// page's memory only and are dropped when a session ends and is dismissed, or on Lock.
import { $, h, config, loadCore, Driver, freeClient } from "/common.js";
import { Call, callSupported } from "/call.js";
import { t, setDeskLanguage, deskLanguage, relabel, ACTIVATORS, GENDERS, AGES, EXPLOITATION, OUTCOMES } from "/desk-i18n.js";
import { setTitleCount, setSound, setNotifications, attention } from "/desk-alerts.js";
import { loadQuickReplies, haveQuickReplies, quickReplyButtons, quickReplyText } from "/desk-quick.js";
import { renderObservatory as drawObservatory, redrawObservatory } from "/desk-observatory.js";

// Languages a person may choose (their names come from the desk's translations).
const LANGUAGES = ["it", "en", "fr", "es", "ro", "ru", "uk", "zh", "sq", "ar", "pcm", "ur"];
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
// What each membership alarm means, for the operator: the key of its text.
const ALARMS = {
  "second-person": "alarm_second_person", "roster-mismatch": "alarm_roster_mismatch",
  "unknown-member": "alarm_unknown_member", "roster-unconfirmed": "alarm_roster_unconfirmed",
};
// Roster confirmations that never come turn into alarms with time.
setInterval(() => {
  if (!client || !driver) return;
  client.handleTimeout(Date.now() / 1000);
  driver.pump();
}, 1000);
const known = new Map(); // session id -> {language, desk}, from the queue or an invitation
// Sessions this desk accepted or joined: the conversation to show when the relay confirms.
const opening = new Set();
// Queue and invitation entries already announced, so each is announced once.
const announced = new Set();

const langName = (c) => (LANGUAGES.includes(c) ? t("lang_" + c) : c);
const deskName = (id) => desks.find((d) => d.id === id)?.name || id;
const options = (map, selected) =>
  Object.entries(map).map(([v, text]) => h("option", { value: v, text, selected: v === selected }));
const mmss = (s) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;

let statusTimer = 0;
function notice(text, ms = 6000) {
  if (text && t(text) !== text) text = t(text);
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
    notice(t("action_failed", { what: t(what), code: e.message }));
    return false;
  } finally {
    driver?.pump();
  }
  return true;
}

// --- login

config().then((c) => { desks = c.desks || []; }).catch(() => {});
loadCore().catch(() => {});
loadQuickReplies().then(() => renderQuickReplies()).catch(() => {});

// Italian unless the operator chooses otherwise; the choice is not kept anywhere.
async function chooseDeskLanguage(code) {
  try {
    await setDeskLanguage(code);
  } catch {
    return; // the texts could not load: keep what is shown
  }
  $("#desk-language").value = deskLanguage();
  relabel();
  redraw();
}
chooseDeskLanguage(deskLanguage());
$("#desk-language").addEventListener("change", (e) => chooseDeskLanguage(e.target.value));

// Sound and desktop notifications: off at every load, turned on by the operator's click
// (which is what lets the browser play a tone or ask for permission).
$("#sound-toggle").addEventListener("change", (e) => setSound(e.target.checked));
$("#notify-toggle").addEventListener("change", async (e) => {
  const wanted = e.target.checked;
  const on = await setNotifications(wanted);
  e.target.checked = on;
  if (wanted && !on) notice("notifications_blocked");
});
// A conversation on screen in a hidden tab is not seen yet: its count clears on return.
document.addEventListener("visibilitychange", () => { if (!document.hidden && sessions.has(active)) renderChat(); });

/** Rebuild everything drawn from texts, after a language change. */
function redraw() {
  if (client && role) {
    whoAmI();
    const form = $("#record-form");
    const keep = form.hidden ? null : new FormData(form);
    buildRecordForm();
    if (keep) for (const [k, v] of keep) if (k !== "exploitation" && form.elements[k]) form.elements[k].value = v;
    renderLists();
    if (active) switchTo(active);
    renderChat();
  }
  renderQuickReplies();
  redrawObservatory();
  updateAttention();
}

$("#login").addEventListener("click", async () => {
  const file = $("#credential-file").files[0];
  const pass = $("#passphrase");
  const err = $("#login-error");
  err.hidden = true;
  if (!file) { err.textContent = t("choose_credential"); err.hidden = false; return; }
  $("#login").disabled = true;
  try {
    const [Approdo, c, text] = await Promise.all([loadCore(), config(), file.text()]);
    desks = c.desks || [];
    client = Approdo.staff(c.org, text, pass.value);
  } catch (e) {
    err.textContent = e.message === "credential" ? t("credential_wrong") : t("could_not_start", { code: e.message });
    err.hidden = false;
    $("#login").disabled = false;
    return;
  } finally {
    // The secret is inside the wasm object now; do not leave copies in the form.
    pass.value = "";
  }
  $("#credential-file").value = "";
  $("#conn").textContent = t("connecting");
  driver = new Driver(client, {
    onEvent,
    onOpen: (reopen) => { if (!reopen) client.login(); },
    onStatus: (s) => { $("#conn").dataset.status = s; $("#conn").textContent = t(s === "open" ? "online" : "connection_lost"); },
  });
  driver.connect();
});

$("#passphrase").addEventListener("keydown", (e) => { if (e.key === "Enter") $("#login").click(); });

function loggedIn() {
  role = client.role();
  whoAmI();
  $("#lock").hidden = false;
  $("#operator-pane").hidden = role !== "operator";
  $("#interpreter-pane").hidden = role !== "interpreter";
  $("#sessions-pane").hidden = role === "coordinator";
  $("#coordinator-pane").hidden = role !== "coordinator";
  relabel();
  buildRecordForm();
  renderQuickReplies();
  $("#transfer-desk").replaceChildren(...desks.map((d) => h("option", { value: d.id, text: d.name })));
  body.dataset.state = "desk";
}

function whoAmI() {
  $("#whoami").textContent = t("whoami", { label: client.label() || t("staff"), role: t("role_" + role) });
  if (role === "interpreter") {
    $("#my-languages").textContent = t("your_languages", { list: client.languages().map(langName).join(", ") });
  }
  const conn = $("#conn");
  if (conn.dataset.status) conn.textContent = t(conn.dataset.status === "open" ? "online" : "connection_lost");
}

function backToLogin(message) {
  driver?.close();
  freeClient(client);
  driver = client = null;
  body.dataset.state = "login";
  $("#login").disabled = false;
  $("#conn").textContent = "";
  const err = $("#login-error");
  err.textContent = t(message);
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
      else notice("reconnected", 3000);
      break;
    case "queue":
      queue = ev.entries || [];
      queueTotal = ev.total ?? queue.length;
      for (const e of queue) known.set(e.session, e);
      announce(queue, "notify_waiting");
      renderLists();
      break;
    case "invitations":
      invitations = ev.entries || [];
      invitationTotal = ev.total ?? invitations.length;
      for (const e of invitations) known.set(e.session, e);
      announce(invitations, "notify_invited");
      renderLists();
      break;
    case "joined":
      openConversation(ev.session);
      // What this desk accepted or joined is what the operator wants to see now, whatever
      // is on screen (an ended conversation included).
      if (opening.delete(ev.session)) {
        switchTo(ev.session);
        renderChat();
        // Accepting means answering: the operator types next.
        $("#message-input").focus();
      }
      break;
    case "peer-arrived":
      if (s && !s.peers.has(ev.peer)) s.peers.set(ev.peer, { state: "arriving" });
      break;
    case "peer-verified":
      if (s) {
        const again = s.peers.get(ev.peer)?.state === "verified";
        s.peers.set(ev.peer, { state: "verified", role: ev.role, label: ev.label });
        if (!again) line(s, "peer_joined", { who: whoLater(s, ev.peer) });
      }
      break;
    case "membership-alarm":
      if (s) {
        s.alarm = true;
        line(s, ALARMS[ev.alarm] || "alarm_generic", { peer: ev.peer, unknown: ev.unknown }, "alert");
        notice("alarm_notice", 10000);
        attention("notify_alarm");
      }
      break;
    case "roster-agreed":
      if (s) {
        const known = ev.members.filter((m) => s.peers.has(m));
        const text = known.map((m) => who(s, m)).join(", ");
        if (text !== s.lastRoster) line(s, known.length ? "roster_agreed" : "roster_alone", { names: namesLater(s, known) });
        s.lastRoster = text;
      }
      break;
    case "channel-restarted":
      if (s) {
        // The person is always participant 1.
        if (ev.peer === 1) line(s, "person_reconnected", null, "alert");
        else line(s, "channel_restarted", { who: whoLater(s, ev.peer) }, "alert");
      }
      break;
    case "peer-rejected":
      if (s) {
        const p = s.peers.get(ev.peer) || {};
        s.peers.set(ev.peer, { ...p, state: "rejected" });
        line(s, "verification_failed", { peer: ev.peer }, "alert");
      }
      break;
    case "peer-left":
      if (s) {
        line(s, "peer_left", { who: whoLater(s, ev.peer) });
        s.peers.delete(ev.peer);
      }
      break;
    case "message":
      if (s) {
        add(s, { from: ev.from, body: ev.body, private: ev.private });
        // Only that something arrived, never what: the notification has no content.
        if (s.id !== active || document.hidden) attention("notify_message");
      }
      break;
    case "not-safe":
      if (s) {
        s.notSafe = true;
        line(s, "not_safe", null, "alert not-safe");
        attention("notify_not_safe");
      }
      break;
    case "safety-code":
      if (s) {
        if (ev.state === "ready" && s.lastReadyCode && ev.code !== s.lastReadyCode) {
          line(s, "code_changed");
        }
        if (ev.state === "ready") s.lastReadyCode = ev.code;
        s.code = { state: ev.state, code: ev.code };
      }
      break;
    case "call-members":
      if (s) {
        const names = s.call.others.map((p) => who(s, p));
        const was = s.callNames || [];
        if (names.join() !== was.join()) line(s, names.length ? "in_the_call" : "nobody_in_call", { names: namesLater(s, s.call.others) });
        // Someone started a call this desk is not in yet: the operator is invited to it.
        if (!was.length && names.length && !s.call.active) attention("notify_call");
        s.callNames = names;
      }
      break;
    case "undecryptable":
      if (s) line(s, "undecryptable", { peer: ev.peer }, "alert");
      break;
    case "intake":
      if (s) s.intake = ev.seeker;
      break;
    case "handover-note":
      if (s) s.note = { desk: ev.desk, body: ev.body, from: ev.from };
      break;
    case "resumed":
      notice(ev.intact ? "resumed_intact" : "resumed_lost", 5000);
      break;
    case "session-ended":
      if (s) {
        // The record can still be filed (the relay allows it for an hour).
        s.closable = role === "operator" && !s.transfer;
        ended(s, "session_ended");
      }
      break;
    case "relay-error":
      if (ev.code === "auth-failed") return backToLogin("auth_failed");
      if (ev.code === "replaced") return backToLogin("replaced");
      if (ev.code === "quota-exceeded") {
        notice("quota_exceeded", 10000);
        break;
      }
      if (ev.code === "busy") {
        // Not this desk's doing: the relay (or, for observatory figures, one of its
        // nodes) could not do it just now; the same action may simply be tried again.
        notice("relay_busy", 10000);
        break;
      }
      notice(ev.code === "session-full" ? "session_full" : t("relay_refused", { code: ev.code }), 10000);
      break;
    case "observatory":
      drawObservatory(deskName, ev);
      break;
  }
  reconcile();
  if (s || ev.type === "joined") renderChat();
  updateAttention();
}

/** Announce queue or invitation entries not seen before (each once; gone ones are forgotten). */
function announce(entries, key) {
  const listed = new Set(entries.map((e) => key + e.session));
  const fresh = [...listed].some((k) => !announced.has(k));
  for (const k of [...announced]) if (k.startsWith(key) && !listed.has(k)) announced.delete(k);
  for (const k of listed) announced.add(k);
  if (fresh) attention(key);
}

/**
 * The number in the tab title: people waiting (operators) or open invitations
 * (interpreters), plus unread messages and unseen alarms in conversations not on screen.
 * Viewing a conversation clears its part.
 */
function updateAttention() {
  let n = role === "operator" ? queueTotal : role === "interpreter" ? invitationTotal : 0;
  for (const s of sessions.values()) n += s.unread + (s.unseenAlert ? 1 : 0);
  setTitleCount(client ? n : 0);
}

/** The core leaves a transferred case by itself once the new operator is verified. */
function reconcile() {
  if (!client) return;
  const live = new Set(client.sessions());
  for (const s of sessions.values()) {
    if (s.ended || live.has(s.id)) continue;
    if (s.transfer) ended(s, "handed_over", { desk: () => deskName(s.transfer) });
    else ended(s, "no_longer_in");
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
      notice: (key) => notice(t(key), key === "call_video_possible" ? 10000 : 6000),
      label: (p) => who(s, p),
    },
  });
  const shown = sessions.get(active);
  if (!shown) switchTo(id);
}

/** Show another conversation: rebuild what depends on which one is shown. */
function switchTo(id) {
  if (active !== id) $("#record-form").hidden = true;
  active = id;
  const s = sessions.get(id);
  $("#messages").replaceChildren();
  if (!s) return;
  for (const it of s.items) appendItem(s, it);
  const langs = Object.fromEntries(LANGUAGES.map((c) => [c, langName(c)]));
  if (s.language && !langs[s.language]) langs[s.language] = s.language;
  $("#invite-language").replaceChildren(...options(langs, s.language));
  renderQuickReplies();
}

function who(s, peer) {
  return nameOf(s.peers.get(peer), peer);
}

/**
 * A participant's name for a line kept in the conversation: who they are now (role,
 * label), worded when the line is shown, so a change of desk language reaches old lines.
 */
function whoLater(s, peer) {
  const p = s.peers.has(peer) ? { ...s.peers.get(peer) } : undefined;
  return () => nameOf(p, peer);
}

/** Several participants' names, as {@link whoLater}, joined. */
function namesLater(s, peers) {
  const each = peers.map((p) => whoLater(s, p));
  return () => each.map((f) => f()).join(", ");
}

function nameOf(p, peer) {
  if (!p || p.state !== "verified") return t("unverified", { peer });
  if (!p.role) return t("person");
  const r = p.role === "operator" ? "operator" : "interpreter";
  return p.label ? t(r + "_named", { label: p.label }) : t(r);
}

function fromAttr(s, peer) {
  if (peer === "me") return "me";
  const p = s.peers.get(peer);
  return p?.role || "person";
}

function add(s, item) {
  s.items.push(item);
  if (s.id === active) {
    appendItem(s, item);
    if (document.hidden && !item.line) { s.unread++; updateAttention(); }
  } else {
    if (item.line) { if (item.cls === "alert") s.unseenAlert = true; } else s.unread++;
    renderTabs();
  }
}

/** A line of the desk's own in a conversation: a text key and its values, drawn in the desk's language. */
function line(s, key, vars, cls) { add(s, { line: key, vars, cls }); }

function ended(s, key, vars) {
  if (s.ended) return;
  s.call.stop();
  // Nobody is in a call of an ended session: no "call in progress" stays behind.
  s.call.members = [];
  s.callNames = [];
  s.ended = { key, vars };
  s.items.push({ line: key, vars });
}

function appendItem(s, it) {
  const list = $("#messages");
  let li;
  if (it.line) {
    li = h("li", { class: "sys " + (it.cls || ""), text: t(it.line, it.vars) });
  } else {
    li = h("li", { class: "msg" + (it.private ? " private" : ""), dataset: { from: fromAttr(s, it.from) } },
      h("span", { class: "who", text: ((w) => (it.private ? t("private_mark", { who: w }) : w))(it.from === "me" ? t("you") : who(s, it.from)) }),
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
    b.textContent = `${langName(s.language || "?")} · ${s.id.slice(0, 6)}${s.unread ? ` (${t("tab_new", { n: s.unread })})` : ""}${s.ended ? ` — ${t("tab_ended")}` : ""}`;
    b.classList.toggle("not-safe", !!s.notSafe);
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
  if (!s) { renderTabs(); updateAttention(); return; }
  // Seen: what was counted for this conversation clears.
  s.unread = 0;
  s.unseenAlert = false;
  updateAttention();
  const operator = role === "operator";
  $("#chat").dataset.session = s.id;
  $("#chat-title").textContent = `${s.language ? langName(s.language) : t("session")} · ${deskName(s.desk || "")} · ${s.id.slice(0, 8)}`;
  $("#intake").textContent = s.intake == null ? t("intake_pending")
    : s.intake === "myself" ? t("intake_myself")
    : t("intake_worker", { who: ACTIVATORS[s.intake] || s.intake });
  $("#not-safe").hidden = !s.notSafe;

  const code = $("#safety-code");
  code.textContent = s.code.state === "ready" ? s.code.code
    : s.code.state === "mismatch" ? t("code_mismatch") : t("code_pending");
  code.classList.toggle("alert", s.code.state === "mismatch");

  $("#participants").replaceChildren(
    h("li", { text: client?.label() ? t("you_role_label", { role: t("role_" + role), label: client.label() }) : t("you_role", { role: t("role_" + role) }) }),
    ...[...s.peers.entries()].map(([id, p]) => h("li", { class: "st-" + p.state },
      p.state === "verified"
        ? [who(s, id), " ", h("span", { class: "verified", text: t(p.role ? "certified_staff" : "channel_verified") })]
        : t(p.state === "rejected" ? "participant_failed" : "participant_verifying", { peer: id }))),
  );

  const note = $("#handover-note");
  note.hidden = !s.note;
  if (s.note) {
    note.replaceChildren(h("strong", { text: t("handover_for", { desk: deskName(s.note.desk) }) }),
      h("p", { text: s.note.body }));
  }

  // Private side-conversation: operator <-> interpreter, never the person.
  const other = operator ? "interpreter" : "operator";
  const targets = staffPeers(s, other);
  $("#private-label").hidden = !targets.length || !!s.ended;
  $("#private-text").textContent = t("private_to_" + other);
  if (!targets.length) $("#private").checked = false;

  $("#composer").hidden = !!s.ended;
  $("#ended-note").hidden = !s.ended;
  $("#ended-note").textContent = s.ended ? t(s.ended.key, s.ended.vars) : "";
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
    start.textContent = t(others || role !== "operator" ? "join_call" : "start_call");
    // An interpreter joins a call the operator started; nobody takes two calls at once.
    start.disabled = !!current || !callSupported() || (role !== "operator" && !others);
    $("#call-status").textContent = s.call.active || s.ended ? "" : !callSupported() ? t("calls_unsupported")
      : current ? t("in_other_call") : others ? t("call_in_progress", { names: s.call.others.map((p) => who(s, p)).join(", ") }) : "";
  }
  const view = $("#call-view");
  view.hidden = !current;
  if (!current) return;
  const tiles = $("#call-tiles");
  if (tiles.firstChild !== current.call.view) tiles.replaceChildren(current.call.view);
  current.call.redrawTiles();
  $("#call-session").textContent = current.id.slice(0, 8);
  $("#call-safety-code").textContent = current.code.state === "ready" ? current.code.code : t("code_pending");
  $("#mute").textContent = t(current.call.muted ? "unmute" : "mute");
  $("#mute").setAttribute("aria-pressed", String(current.call.muted));
  $("#camera").textContent = t(current.call.cameraOn ? "camera_off" : "camera_on");
  $("#call-audio-only").hidden = current.call.cameraOn;
  $("#hang-up").textContent = t(role === "operator" ? "hang_up" : "leave_call");
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
  const ok = act("act_send", () => {
    if (!priv) return client.sendText(s.id, text);
    const to = staffPeers(s, role === "operator" ? "interpreter" : "operator");
    if (!to.length) throw new Error(t("nobody_private"));
    for (const peer of to) client.sendPrivate(s.id, peer, text);
  });
  if (!ok) return;
  input.value = "";
  add(s, { from: "me", body: text, private: priv });
}

$("#send").addEventListener("click", sendMessage);

// Quick replies: sent in the person's language (the session's), shown in the desk's.
function renderQuickReplies() {
  const s = sessions.get(active);
  $("#quick-replies").hidden = !haveQuickReplies() || role !== "operator";
  $("#quick-reply-list").replaceChildren(...quickReplyButtons(s?.language, deskLanguage()));
}

$("#quick-reply-list").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-reply]");
  const s = sessions.get(active);
  const text = b && s && !s.ended ? quickReplyText(b.dataset.reply, s.language) : "";
  if (text && act("act_send", () => client.sendText(s.id, text))) add(s, { from: "me", body: text, private: false });
});
$("#message-input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendMessage(); }
});

// --- queue and invitations

function renderLists() {
  fill("#queue", queue, t("accept"), queueTotal);
  fill("#invitations", invitations, t("join"), invitationTotal);
}

function fill(table, entries, verb, total) {
  $(table + " tbody").replaceChildren(...entries.map((e) => h("tr", { class: e.away ? "away" : "", dataset: { session: e.session } },
    // A person whose connection dropped may come back within the grace period: say so.
    h("td", {}, langName(e.language), ...(e.away ? [h("span", { class: "away-mark", title: t("away_hint"), text: t("away") })] : [])),
    h("td", { text: deskName(e.desk) }),
    h("td", { class: "wait", dataset: { since: Date.now() - (e.waitingSecs || 0) * 1000 } }),
    h("td", {}, h("button", { type: "button", class: "primary", dataset: { session: e.session }, text: verb })))));
  const section = $(table).closest("section");
  // An empty table is only headers to a screen reader: "nobody is waiting" says it instead.
  $(table).hidden = entries.length === 0;
  section.querySelector(".empty").hidden = entries.length > 0;
  // The relay sends the oldest entries only (at most 50) and the total.
  let more = section.querySelector(".more");
  if (!more) section.append(more = h("p", { class: "more" }));
  more.hidden = total <= entries.length;
  more.textContent = t("showing_oldest", { n: entries.length, total });
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
  if (b) { b.disabled = true; opening.add(b.dataset.session); act("act_accept", () => client.accept(b.dataset.session)); }
});
$("#invitations").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-session]");
  if (b) { b.disabled = true; opening.add(b.dataset.session); act("act_join", () => client.join(b.dataset.session)); }
});

// --- operator tools

$("#invite").addEventListener("click", () => {
  const s = sessions.get(active);
  const language = $("#invite-language").value;
  if (s && act("act_invite", () => client.invite(s.id, language))) {
    line(s, "invited", { language: () => langName(language) });
  }
});

$("#transfer").addEventListener("click", () => {
  const s = sessions.get(active);
  const desk = $("#transfer-desk").value;
  const note = $("#transfer-note").value;
  if (s && desk && act("act_transfer", () => client.transfer(s.id, desk, note))) {
    s.transfer = desk;
    $("#transfer-note").value = "";
    line(s, "transfer_requested", { desk: () => deskName(desk) });
  }
});

$("#end-session").addEventListener("click", () => {
  const s = sessions.get(active);
  if (s && act("act_end", () => client.end(s.id))) {
    ended(s, "you_ended");
    renderChat();
  }
});

$("#leave-session").addEventListener("click", () => {
  const s = sessions.get(active);
  if (s && act("act_leave", () => client.leave(s.id))) {
    ended(s, "you_left");
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
  const regions = { unknown: t("unknown") };
  for (const d of desks.slice(1)) regions[d.id] = d.name; // the first desk is national
  const field = (name, label, map, selected) => h("label", {}, label,
    h("select", { name }, ...options(map, selected)));
  $("#record-form .fields").replaceChildren(
    field("gender", t("field_gender"), GENDERS, "unknown"),
    field("age", t("field_age"), AGES, "unknown"),
    field("emerged", t("field_emerged"), regions, "unknown"),
    field("exploited", t("field_exploited"), regions, "unknown"),
    field("activator", t("field_activator"), ACTIVATORS, "person"),
    field("outcome", t("field_outcome"), { "": t("choose"), ...OUTCOMES }, ""),
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
  if (!f.outcome.value) { err.textContent = t("choose_outcome"); err.hidden = false; return; }
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
  if (act("act_close_case", () => client.closeCase(s.id, JSON.stringify(record)))) {
    $("#record-form").reset();
    $("#record-form").hidden = true;
    s.closable = false;
    if (s.ended) line(s, "record_filed");
    ended(s, "case_closed");
    renderChat();
  }
});

// --- coordinator

$("#load-observatory").addEventListener("click", () => act("act_observatory", () => client.queryObservatory()));
