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
// Plural texts: a family `base_<category>` for each CLDR plural category a language has
// (Intl.PluralRules: English one/other, Russian one/few/many/other, Arabic all six…). en.json
// defines a family by its `base_other`; the page picks the category with Intl.PluralRules.
const CATEGORIES = ["zero", "one", "two", "few", "many", "other"];
const pluralBase = (key) => {
  const m = key.match(/^(.+)_(zero|one|two|few|many|other)$/);
  return m ? m[1] : null;
};

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
    const families = new Set(Object.keys(en).filter((k) => k.endsWith("_other")).map(pluralBase));
    const inFamily = (key) => families.has(pluralBase(key));
    for (const [key, enValue] of Object.entries(en)) {
      if (inFamily(key)) continue; // checked below, by the language's own categories
      assert.ok(Object.hasOwn(tr, key), `${lang} lacks "${key}"`);
      assert.equal(typeof tr[key], "string", `${lang}.${key} is not a string`);
      assert.ok(tr[key].trim() !== "", `${lang}.${key} is empty`);
      for (const p of placeholders(enValue)) {
        assert.ok(tr[key].includes(p), `${lang}.${key} lacks the placeholder ${p}`);
      }
    }
    const categories = new Intl.PluralRules(lang).resolvedOptions().pluralCategories;
    for (const base of families) {
      for (const cat of categories) {
        const key = `${base}_${cat}`;
        assert.ok(typeof tr[key] === "string" && tr[key].trim() !== "", `${lang} lacks the plural "${key}"`);
      }
      // The general form keeps every placeholder; a category may spell the number out.
      for (const p of placeholders(en[`${base}_other`])) {
        assert.ok(tr[`${base}_other`].includes(p), `${lang}.${base}_other lacks the placeholder ${p}`);
      }
    }
    const extra = Object.keys(tr).filter((key) => !Object.hasOwn(en, key) && !(inFamily(key) && CATEGORIES.includes(key.slice(pluralBase(key).length + 1))));
    assert.deepEqual(extra, [], `${lang} has keys en.json lacks`);
  });

  test(`${lang}: _dir is ${RTL.has(lang) ? "rtl" : "ltr"}`, () => {
    const tr = langs.get(lang);
    assert.ok(tr, "the file failed to parse");
    assert.equal(tr._dir, RTL.has(lang) ? "rtl" : "ltr");
  });
}
