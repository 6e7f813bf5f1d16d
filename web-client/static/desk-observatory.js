// The coordinator's observatory view: tables and SVG charts of the relay's aggregated,
// suppressed counts, and a CSV of exactly what is shown. No library, no request.
import { $, h } from "/common.js";
import { t, GENDERS, AGES, EXPLOITATION, ACTIVATORS, OUTCOMES } from "/desk-i18n.js";

// The dimensions' titles come from the desk's translations ("obs_dim_" + dimension).
const DIMENSIONS = ["emerged", "exploited", "exploitation", "gender", "age", "activator", "outcome"];
const OBS_VALUES = { gender: GENDERS, age: AGES, exploitation: EXPLOITATION, activator: ACTIVATORS, outcome: OUTCOMES };
const SVG_NS = "http://www.w3.org/2000/svg";
let csvUrl = null;
let shown = null; // the last answer drawn, redrawn in a new desk language

const obsCell = (n) => (n == null ? t("obs_suppressed") : String(n));
function obsLabel(deskName, dimension, code) {
  if (dimension === "emerged" || dimension === "exploited") return code === "none" ? t("obs_no_territory") : deskName(code);
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
  const chart = svg("svg", { class: "obs-chart", role: "img", "aria-label": t("obs_chart", { title }),
    viewBox: `0 0 ${labelW + barW + 50} ${rows.length * rowH + 4}`, width: labelW + barW + 50, height: rows.length * rowH + 4 });
  chart.append(svg("title", {}, t("obs_chart", { title })));
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
  const field = (x) => (/[",\n]/.test(x) ? `"${x.replaceAll('"', '""')}"` : x);
  return tables.map((table) => [
    field(table.caption.textContent),
    ...[...table.rows].map((r) => [...r.cells].map((c) => field(c.textContent)).join(",")),
  ].join("\n")).join("\n\n") + "\n";
}

/** Draw the coordinator's tables, charts and CSV from the relay's aggregated answer. */
export function renderObservatory(deskName, answer) {
  shown = { deskName, answer };
  const months = answer.months || [];
  const out = [h("p", { text: months.length ? t("obs_summary", { cases: obsCell(answer.cases), months: months.length }) : t("obs_empty") })];
  const tables = [];
  const section = (title, header, rows, chartRows, key, note) => {
    const table = obsTable(title, header, rows, key);
    tables.push(table);
    // A wide table (many months) scrolls sideways: focusable, so the keyboard can scroll it.
    out.push(h("section", { class: "obs-section", tabindex: 0, "aria-labelledby": `obs-${key}` },
      h("h3", { id: `obs-${key}`, text: title }), note ? h("p", { class: "small", text: note }) : null,
      obsChart(title, chartRows), table));
  };
  if (months.length) {
    const byMonth = months.map((m, i) => [m, answer.byMonth[i]]);
    section(t("obs_by_month"), [t("obs_month"), t("obs_cases")], byMonth.map(([m, n]) => [m, [n]]), byMonth, "month");
    for (const table of answer.tables || []) {
      const title = DIMENSIONS.includes(table.dimension) ? t("obs_dim_" + table.dimension) : table.dimension;
      const labels = table.values.map((v) => obsLabel(deskName, table.dimension, v));
      const rows = labels.map((label, i) => [label, [table.total[i], ...months.map((_, m) => table.byMonth[m][i])]]);
      section(title, [t("obs_value"), t("obs_all_months"), ...months], rows, labels.map((l, i) => [l, table.total[i]]), table.dimension,
        table.dimension === "exploitation" ? t("obs_multi") : null);
    }
    const csv = obsCsv(tables);
    if (csvUrl) URL.revokeObjectURL(csvUrl);
    csvUrl = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
    out.push(h("section", { class: "obs-section obs-csv" },
      h("label", { for: "observatory-csv", text: t("obs_csv") }),
      h("textarea", { id: "observatory-csv", readOnly: true, rows: 8, value: csv }),
      h("a", { id: "observatory-csv-download", href: csvUrl, download: `observatory-${months[0]}-${months[months.length - 1]}.csv`, text: t("obs_download") })));
  }
  $("#observatory").replaceChildren(...out);
}

/** Draw the last answer again, in the desk's language now (after the operator changes it). */
export function redrawObservatory() {
  if (shown) renderObservatory(shown.deskName, shown.answer);
}
