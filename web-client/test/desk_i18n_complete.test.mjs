// The staff desk's texts (web-client/i18n/desk/) exist in Italian and English with the same
// keys and placeholders, every key the desk's pages and scripts name is there, and every
// quick reply (web-client/quick-replies.json) has a text in each of the person's languages.
//   node --test web-client/test/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";

const read = (rel) => readFileSync(new URL(rel, import.meta.url), "utf8");
const json = (rel) => JSON.parse(read(rel));
const placeholders = (s) => [...new Set(s.match(/\{[A-Za-z0-9_]+\}/g) ?? [])].sort();

const DESK = ["it", "en"];
const desk = Object.fromEntries(DESK.map((l) => [l, json(`../i18n/desk/${l}.json`)]));

test("the desk's languages have the same keys, non-empty, with the same placeholders", () => {
  const keys = Object.keys(desk.en).sort();
  assert.ok(keys.length > 100, "the desk has its texts in i18n/desk/en.json");
  for (const l of DESK) {
    assert.deepEqual(Object.keys(desk[l]).sort(), keys, `${l}.json has the same keys as en.json`);
    for (const k of keys) {
      assert.equal(typeof desk[l][k], "string", `${l}.${k} is a string`);
      assert.ok(desk[l][k].trim() !== "", `${l}.${k} is not empty`);
      assert.deepEqual(placeholders(desk[l][k]), placeholders(desk.en[k]), `${l}.${k} has en's placeholders`);
    }
  }
});

test("every text key the desk's page and scripts name exists", () => {
  const sources = ["desk.js", "desk-i18n.js", "desk-alerts.js", "desk-quick.js", "desk-observatory.js"].map((f) => read(`../static/${f}`)).join("\n");
  const html = read("../static/desk.html");
  const used = new Set();
  const patterns = [
    /\bt\(\s*"([a-z0-9_-]+)"/g,
    /\b(?:line|ended)\(\s*s,\s*"([a-z0-9_-]+)"/g,
    /\b(?:attention|notice|backToLogin|act)\(\s*"([a-z0-9_-]+)"/g,
    /\b(?:announce)\([^,]+,\s*"([a-z0-9_-]+)"/g,
  ];
  for (const re of patterns) for (const m of sources.matchAll(re)) used.add(m[1]);
  for (const m of html.matchAll(/data-i18n(?:-placeholder)?="([^"]+)"/g)) used.add(m[1]);
  for (const m of sources.matchAll(/"((?:alarm|notify|act)_[a-z_]+)"/g)) used.add(m[1]);
  assert.ok(used.size > 50, `found the keys in use (${used.size})`);
  // A key ending in "_" is a prefix completed at run time ("lang_" + code): some key must have it.
  const missing = [...used].filter((k) => (k.endsWith("_")
    ? !Object.keys(desk.en).some((key) => key.startsWith(k)) : !Object.hasOwn(desk.en, k)));
  assert.deepEqual(missing, [], "keys used by the desk but missing from its translations");
});

test("every quick reply has a text in each of the person's 12 languages", () => {
  const languages = readdirSync(new URL("../i18n/", import.meta.url))
    .filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5)).sort();
  assert.equal(languages.length, 12);
  const { replies } = json("../quick-replies.json");
  assert.ok(Array.isArray(replies) && replies.length >= 6, "at least six quick replies");
  const ids = replies.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length, "quick reply ids are unique");
  for (const r of replies) {
    assert.match(r.id, /^[a-z0-9-]+$/);
    assert.deepEqual(Object.keys(r.text).sort(), languages, `${r.id} has exactly the person's languages`);
    for (const l of languages) assert.ok(r.text[l].trim() !== "", `${r.id}.${l} is not empty`);
  }
});
