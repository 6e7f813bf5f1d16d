// Every translation in web-client/i18n/ is complete and consistent with en.json:
// same keys, non-empty strings, the same {placeholders}, and the right text direction.
//   node --test web-client/test/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";

const dir = new URL("../i18n/", import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
const RTL = new Set(["ar", "ur"]);
const placeholders = (s) => new Set(s.match(/\{[A-Za-z0-9_]+\}/g) ?? []);

const langs = new Map();
for (const f of files) {
  const lang = f.slice(0, -".json".length);
  test(`${f} parses as a JSON object`, () => {
    const value = JSON.parse(readFileSync(new URL(f, dir), "utf8"));
    assert.equal(typeof value, "object");
    assert.ok(value !== null && !Array.isArray(value), `${f} is not an object`);
    langs.set(lang, value);
  });
}

test("en.json exists and every other language is there too", () => {
  assert.ok(files.includes("en.json"), "en.json is missing");
  assert.ok(files.length > 1, "no translations found");
});

for (const f of files) {
  const lang = f.slice(0, -".json".length);
  test(`${lang}: same keys as en.json, non-empty strings, same placeholders`, () => {
    const en = langs.get("en");
    const tr = langs.get(lang);
    assert.ok(en && tr, "a file failed to parse");
    for (const [key, enValue] of Object.entries(en)) {
      assert.ok(Object.hasOwn(tr, key), `${lang} lacks "${key}"`);
      assert.equal(typeof tr[key], "string", `${lang}.${key} is not a string`);
      assert.ok(tr[key].trim() !== "", `${lang}.${key} is empty`);
      for (const p of placeholders(enValue)) {
        assert.ok(tr[key].includes(p), `${lang}.${key} lacks the placeholder ${p}`);
      }
    }
    const extra = Object.keys(tr).filter((key) => !Object.hasOwn(en, key));
    assert.deepEqual(extra, [], `${lang} has keys en.json lacks`);
  });

  test(`${lang}: _dir is ${RTL.has(lang) ? "rtl" : "ltr"}`, () => {
    const tr = langs.get(lang);
    assert.ok(tr, "the file failed to parse");
    assert.equal(tr._dir, RTL.has(lang) ? "rtl" : "ltr");
  });
}
