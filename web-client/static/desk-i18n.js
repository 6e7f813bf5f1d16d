// The desk's texts (web-client/i18n/desk/): Italian by default, English when the operator
// chooses it. The choice lives in this page's memory only, like everything on the desk.
import { fetchJSON } from "/common.js";

/** The languages the desk itself is written in; the first is the default. */
export const DESK_LANGUAGES = ["it", "en"];

let strings = {};
let fallback = {};
let current = null;
let requests = 0; // the latest choice wins, however the loads finish

/** The desk's language now ("it" until another is chosen). */
export const deskLanguage = () => current || DESK_LANGUAGES[0];

/**
 * A text by key, `{name}` placeholders filled from `vars`; English, then the key, if
 * missing. A var may be a function: it is called now, so a line kept in a conversation
 * (a role, a language, a desk) is worded in the desk's language of the moment it is shown.
 */
export function t(key, vars) {
  let s = strings[key] ?? fallback[key] ?? key;
  if (vars) {
    for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(typeof v === "function" ? v() : v));
  }
  return s;
}

/** Fill every `data-i18n` (text) and `data-i18n-placeholder` element of the page. */
export function applyStatic() {
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

/** Load a desk language and switch the page's static texts and `lang` to it. */
export async function setDeskLanguage(code) {
  const lang = DESK_LANGUAGES.includes(code) ? code : DESK_LANGUAGES[0];
  const ticket = ++requests;
  const [own, en] = await Promise.all([
    fetchJSON(`/i18n/desk/${lang}.json`),
    lang === "en" ? Promise.resolve({}) : fetchJSON("/i18n/desk/en.json").catch(() => ({})),
  ]);
  if (ticket !== requests) return deskLanguage();
  strings = own;
  fallback = en;
  current = lang;
  document.documentElement.lang = lang;
  applyStatic();
  return lang;
}

// Codes of the contract; their labels are filled in the desk's language by relabel(), in
// place, so every table and form that reads these maps shows the chosen language.
export const ACTIVATORS = {};
export const GENDERS = {};
export const AGES = {};
export const EXPLOITATION = {};
export const OUTCOMES = {};
const CODES = [
  [ACTIVATORS, "activator", ["person", "cas-sprar", "prefecture", "territorial-commission", "police", "labour", "social-health", "street-unit", "private-citizen"]],
  [GENDERS, "gender", ["female", "male", "transgender", "unknown"]],
  [AGES, "age", ["under-18", "18-25", "26-35", "36-50", "over-50", "unknown"]],
  [EXPLOITATION, "exploitation", ["sexual-street", "sexual-indoor", "labour-construction", "labour-agriculture", "labour-catering", "labour-domestic-care", "begging", "forced-illegal-activities", "forced-marriage", "not-identified"]],
  [OUTCOMES, "outcome", ["counselling", "interview", "shelter", "multi-agency", "referral"]],
];
/** Fill the code maps' labels in the desk's language (after each language change). */
export function relabel() {
  for (const [map, kind, codes] of CODES) {
    for (const c of codes) map[c] = c === "unknown" ? t("unknown") : t(`${kind}_${c}`);
  }
}
