// The keyboard focus is visible wherever it lands: on the white page (a language button)
// and on the dark quick-exit bar (the exit link), the ring has a colour of at least 3:1
// against what surrounds it (WCAG 1.4.11). A yellow ring alone was 1.5:1 on white.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser } from "./harness.mjs";

const rgb = (s) => (s.match(/rgba?\(([^)]+)\)/)?.[1] || "").split(",").slice(0, 3).map(Number);
const luminance = ([r, g, b]) => {
  const c = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * c(r) + 0.7152 * c(g) + 0.0722 * c(b);
};
const contrast = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};

/** The focused element's ring colours and the background around it. */
const ringOf = (page) => page.evaluate(() => {
  const el = document.activeElement;
  const cs = getComputedStyle(el);
  let bg = "rgb(255, 255, 255)";
  for (let e = el.parentElement; e; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    if (c && c !== "transparent" && !/rgba\([^)]*,\s*0\)/.test(c)) { bg = c; break; }
  }
  const rings = [];
  if (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2) rings.push(cs.outlineColor);
  for (const m of cs.boxShadow.matchAll(/rgba?\([^)]+\)/g)) rings.push(m[0]);
  return { what: el.id || el.textContent.trim(), visible: el.matches(":focus-visible"), rings, bg };
});

test("the focus ring is at least 3:1 against its surroundings on the page and on the bar", async () => {
  const relay = await startRelay();
  const b = await openBrowser({ mobile: true });
  try {
    await b.page.goto(relay.url);
    await b.page.locator("#s-language button").first().waitFor();
    const seen = new Map();
    for (let i = 0; i < 20 && seen.size < 2; i++) {
      await b.page.keyboard.press("Tab");
      const where = await b.page.evaluate(() => document.activeElement?.id === "exit" ? "bar" : document.activeElement?.closest("#s-language") ? "page" : "");
      if (where && !seen.has(where)) seen.set(where, await ringOf(b.page));
    }
    assert.deepEqual([...seen.keys()].sort(), ["bar", "page"], "Tab reached the exit link and a language button");
    for (const [where, ring] of seen) {
      assert.ok(ring.visible, `${where}: focus-visible`);
      const best = Math.max(0, ...ring.rings.map((c) => contrast(rgb(c), rgb(ring.bg))));
      assert.ok(best >= 3, `${where} (${ring.what}): best ring contrast ${best.toFixed(2)} against ${ring.bg} (rings ${ring.rings.join(" | ")})`);
    }
  } finally {
    await b.close();
    await relay.stop();
  }
});
