// How the desk gets a busy operator's attention: a count in the tab title, an optional
// short tone (made here with WebAudio, no audio file), and an optional desktop
// notification. Notifications never carry what anyone wrote: only what kind of thing
// happened. Nothing of this is stored; both toggles start off with every page load.
import { t } from "/desk-i18n.js";

let soundOn = false;
let notifyOn = false;
let audio = null;

/** The tab title, with the number of things waiting for this operator when there are any. */
export function setTitleCount(n) {
  document.title = n > 0 ? t("title_count", { n }) : t("title");
}

/** Turn the tone on or off. Called from the toggle's click, so the browser lets audio start. */
export function setSound(on) {
  soundOn = on;
  if (on && !audio && typeof AudioContext === "function") audio = new AudioContext();
  if (on) audio?.resume?.();
}

/**
 * Turn desktop notifications on or off. Turning them on asks for permission (this must run
 * from a user gesture); resolves to whether they are on.
 */
export async function setNotifications(on) {
  notifyOn = false;
  if (!on || typeof Notification !== "function") return false;
  let permission = Notification.permission;
  if (permission !== "granted") permission = await Notification.requestPermission();
  notifyOn = permission === "granted";
  return notifyOn;
}

function tone() {
  if (!soundOn || !audio) return;
  const start = audio.currentTime;
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.type = "sine";
  osc.frequency.setValueAtTime(880, start);
  osc.frequency.setValueAtTime(660, start + 0.12);
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.3);
  osc.connect(gain).connect(audio.destination);
  osc.start(start);
  osc.stop(start + 0.32);
}

/**
 * Something needs the operator: `key` names the kind (notify_waiting, notify_message, …).
 * The notification's text is that kind's sentence only, never content.
 */
export function attention(key) {
  tone();
  if (!notifyOn || typeof Notification !== "function") return;
  try {
    const n = new Notification(t("brand"), { body: t(key), tag: key, silent: soundOn });
    n.onclick = () => { window.focus(); n.close?.(); };
  } catch { /* a browser that refuses page notifications: the title count still shows */ }
}
