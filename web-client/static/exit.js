// The neutral page a quick exit lands on, in the person's language: `/exit?l=ar`. The
// language comes from the address only; nothing is read from or written to storage.
import { fetchJSON } from "/common.js";

const LANGS = new Set(["it", "en", "fr", "es", "ro", "ru", "uk", "zh", "sq", "ar", "pcm", "ur"]);
const RTL = new Set(["ar", "ur"]);
const l = new URLSearchParams(location.search).get("l");

if (l && l !== "en" && LANGS.has(l)) {
  fetchJSON(`/i18n/${l}.json`).then((d) => {
    document.documentElement.lang = l;
    document.documentElement.dir = RTL.has(l) ? "rtl" : "ltr";
    for (const el of document.querySelectorAll("[data-i18n]")) {
      const text = d[el.dataset.i18n];
      if (typeof text === "string") el.textContent = text;
    }
    if (typeof d.weather_title === "string") document.title = d.weather_title;
  }).catch(() => { /* the English weather is just as neutral */ });
}
