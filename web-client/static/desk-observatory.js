// The coordinator's observatory view: tables and SVG charts of the relay's aggregated,
// suppressed counts, and a CSV of exactly what is shown. No library, no request.
import { $, h } from "/common.js";
import { GENDERS, AGES, EXPLOITATION, ACTIVATORS, OUTCOMES } from "/desk-i18n.js";

// Every string of the coordinator's pane, in one place (for the desk's translations).
const OBS_TEXT = {
  suppressed: "<5",
  cases: "Cases",
  month: "Month",
  allMonths: "All months",
  value: "Value",
  byMonth: "Cases by month",
  noTerritory: "Not stated",
  empty: "No case has been filed yet.",
  chart: (title) => `Chart: ${title}`,
  summary: (cases, months) => `${cases} case(s) in ${months} month(s). Counts below 5 are shown as <5, and some larger ones are withheld too so that no small count can be worked out from the others.`,
  multi: "A case with several types of exploitation counts once under each, so these counts do not add up to the cases.",
  csv: "CSV of the tables above",
  download: "Download CSV",
  dimensions: {
    emerged: "Territory where the case emerged", exploited: "Territory of exploitation",
    exploitation: "Type of exploitation", gender: "Gender", age: "Age band",
    activator: "Who activated the contact", outcome: "Outcome",
  },
};
const OBS_VALUES = { gender: GENDERS, age: AGES, exploitation: EXPLOITATION, activator: ACTIVATORS, outcome: OUTCOMES };
const SVG_NS = "http://www.w3.org/2000/svg";
let csvUrl = null;

const obsCell = (n) => (n == null ? OBS_TEXT.suppressed : String(n));
function obsLabel(deskName, dimension, code) {
  if (dimension === "emerged" || dimension === "exploited") return code === "none" ? OBS_TEXT.noTerritory : deskName(code);
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
  const chart = svg("svg", { class: "obs-chart", role: "img", "aria-label": OBS_TEXT.chart(title),
    viewBox: `0 0 ${labelW + barW + 50} ${rows.length * rowH + 4}`, width: labelW + barW + 50, height: rows.length * rowH + 4 });
  chart.append(svg("title", {}, OBS_TEXT.chart(title)));
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
  const field = (t) => (/[",\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t);
  return tables.map((t) => [
    field(t.caption.textContent),
    ...[...t.rows].map((r) => [...r.cells].map((c) => field(c.textContent)).join(",")),
  ].join("\n")).join("\n\n") + "\n";
}

/** Draw the coordinator's tables, charts and CSV from the relay's aggregated answer. */
export function renderObservatory(deskName, answer) {
  const months = answer.months || [];
  const out = [h("p", { text: months.length ? OBS_TEXT.summary(obsCell(answer.cases), months.length) : OBS_TEXT.empty })];
  const tables = [];
  const section = (title, header, rows, chartRows, key, note) => {
    const table = obsTable(title, header, rows, key);
    tables.push(table);
    out.push(h("section", { class: "obs-section" }, h("h3", { text: title }), note ? h("p", { class: "small", text: note }) : null,
      obsChart(title, chartRows), table));
  };
  if (months.length) {
    const byMonth = months.map((m, i) => [m, answer.byMonth[i]]);
    section(OBS_TEXT.byMonth, [OBS_TEXT.month, OBS_TEXT.cases], byMonth.map(([m, n]) => [m, [n]]), byMonth, "month");
    for (const t of answer.tables || []) {
      const title = OBS_TEXT.dimensions[t.dimension] || t.dimension;
      const labels = t.values.map((v) => obsLabel(deskName, t.dimension, v));
      const rows = labels.map((label, i) => [label, [t.total[i], ...months.map((_, m) => t.byMonth[m][i])]]);
      section(title, [OBS_TEXT.value, OBS_TEXT.allMonths, ...months], rows, labels.map((l, i) => [l, t.total[i]]), t.dimension,
        t.dimension === "exploitation" ? OBS_TEXT.multi : null);
    }
    const csv = obsCsv(tables);
    if (csvUrl) URL.revokeObjectURL(csvUrl);
    csvUrl = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
    out.push(h("section", { class: "obs-section obs-csv" },
      h("label", { for: "observatory-csv", text: OBS_TEXT.csv }),
      h("textarea", { id: "observatory-csv", readOnly: true, rows: 8, value: csv }),
      h("a", { id: "observatory-csv-download", href: csvUrl, download: `observatory-${months[0]}-${months[months.length - 1]}.csv`, text: OBS_TEXT.download })));
  }
  $("#observatory").replaceChildren(...out);
}
