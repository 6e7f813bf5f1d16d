// A coordinator sees the observatory as counts, never records: tables and SVG charts by
// month and by each indicator, every count below 5 shown as "<5", and a CSV export that
// is exactly the tables on screen.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst, untilState, foreignRequests, deskLanguage } from "./harness.mjs";

const CASES = 5; // the smallest count the relay discloses

// One case from intake to its filed record, at a freshly opened desk.
async function fileCase(person, operator, relay) {
  await deskLogin(operator, relay, "operator-national");
  await deskLanguage(operator, "en");
  await personStarts(person, relay.url, { worker: "street-unit" });
  await acceptFirst(operator.page);
  await untilState(person.page, "chat");
  await operator.page.locator("#intake").getByText(/street/i).waitFor({ timeout: 20_000 });
  await operator.page.locator("#close-case").click();
  const form = operator.page.locator("#record-form");
  await form.waitFor({ state: "visible" });
  await form.locator('[name="gender"]').selectOption("female");
  await form.locator('[name="age"]').selectOption("18-25");
  await form.locator('[name="emerged"]').selectOption("veneto");
  await form.locator('[name="exploited"]').selectOption("veneto");
  await form.locator('input[name="exploitation"][value="sexual-street"]').check();
  await form.locator('[name="outcome"]').selectOption("referral");
  await operator.page.locator("#record-submit").click();
  await untilState(person.page, "ended");
}

// RFC 4180 fields, enough for the export: quoted fields may hold commas and quotes.
function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n") { row.push(field); rows.push(row); row = []; field = ""; }
    else field += c;
  }
  return rows;
}

test("a coordinator sees suppressed tables and charts, and a CSV of exactly them", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  const coordinator = await openBrowser();
  try {
    for (let i = 0; i < CASES; i++) await fileCase(person, operator, relay);

    await deskLogin(coordinator, relay, "coordinator");
    await deskLanguage(coordinator, "en");
    await coordinator.page.locator("#load-observatory").click();
    const pane = coordinator.page.locator("#observatory");
    await pane.locator("#observatory-csv").waitFor({ timeout: 20_000 });
    const month = new Date().toISOString().slice(0, 7);

    // Tables by month and by every indicator, each with an SVG chart drawn by the page.
    const keys = await pane.locator("table[data-table]").evaluateAll((ts) => ts.map((t) => t.dataset.table));
    assert.deepEqual(keys, ["month", "emerged", "exploited", "exploitation", "gender", "age", "activator", "outcome"]);
    assert.equal(await pane.locator("svg.obs-chart").count(), keys.length, "one chart per table");
    assert.ok(await pane.locator("svg.obs-chart rect.obs-bar").count() > 0, "the charts draw bars");

    // Five identical cases: those counts are shown; every other count is below 5 and says so.
    const cell = (table, row, col) =>
      pane.locator(`table[data-table="${table}"] tbody tr`).filter({ has: coordinator.page.locator("th", { hasText: new RegExp(`^${row}$`) }) }).locator("td").nth(col);
    assert.equal((await cell("month", month, 0).textContent()).trim(), String(CASES));
    assert.equal((await cell("gender", "Female", 0).textContent()).trim(), String(CASES));
    assert.equal((await cell("gender", "Male", 0).textContent()).trim(), "<5");
    assert.equal((await cell("gender", "Male", 1).textContent()).trim(), "<5");
    const counts = await pane.locator("td").allTextContents();
    assert.ok(counts.includes("<5"));
    for (const c of counts) assert.ok(c === "<5" || Number(c) >= 5, `no count below 5 is shown (${c})`);
    const chartValues = await pane.locator("svg.obs-chart text.obs-value").allTextContents();
    for (const c of chartValues) assert.ok(c === "<5" || Number(c) >= 5, `no chart value below 5 (${c})`);

    // The CSV is the tables on screen, cell for cell.
    const csv = await pane.locator("#observatory-csv").inputValue();
    const shown = await pane.locator("table[data-table]").evaluateAll((ts) => ts.map((t) => [
      [t.caption.textContent],
      ...[...t.rows].map((r) => [...r.cells].map((c) => c.textContent)),
    ]));
    const blocks = parseCsv(csv).reduce((acc, row) => {
      if (row.length === 1 && row[0] === "") acc.push([]);
      else acc[acc.length - 1].push(row);
      return acc;
    }, [[]]);
    assert.deepEqual(blocks, shown);
    assert.match(await pane.locator("#observatory-csv-download").getAttribute("href"), /^blob:/);

    // Drawn by the page itself: nothing fetched elsewhere, nothing the CSP refused.
    assert.deepEqual(foreignRequests(coordinator.record, relay.url), []);
    assert.deepEqual(await coordinator.page.evaluate(() => window.__csp), []);
  } finally {
    for (const b of [person, operator, coordinator]) await b.close();
    await relay.stop();
  }
});
