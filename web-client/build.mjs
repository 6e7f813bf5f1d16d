// Post-processing of web-client/dist/, run by scripts/build-web after the module and the
// static files are in place. Node built-ins only (no npm dependencies).
//
//   node web-client/build.mjs [DIST]
//
// 1. Refuses pages the relay's Content-Security-Policy would break: inline scripts,
//    <style>, style= and on*= attributes, javascript: URLs.
// 2. Writes DIST/integrity.json: {"/pkg/approdo_wasm_bg.wasm": "sha384-…", …} for every
//    asset, so page scripts can pass `integrity` to fetch().
// 3. Sets Subresource Integrity on every <script src>, <link rel="stylesheet"> and
//    <link rel="modulepreload"> of every page (their files must exist), and on every
//    <link rel="preload"> of a file in dist/ (the same value integrity.json holds, so the
//    preload matches the script's fetch; not on /integrity.json, nor /config.json).
// 4. Writes a gzip (level 9) and a Brotli (quality 11) next to every text and wasm file;
//    the relay serves them precompressed (Brotli to browsers that accept it, which every
//    current browser does over HTTPS and on loopback; gzip otherwise).
// 5. Prints the first-load weight of each page, Brotli and gzip, and fails when the person's
//    page (index.html) is over the budget in Brotli (what the relay sends today's browsers).

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, readdirSync, statSync, existsSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve, sep, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(process.argv[2] ?? join(here, 'dist'));
/**
 * First-load budget of the person's page in kB (1000 bytes): the bodies as the relay sends
 * them to a browser accepting Brotli (headers not counted; the browser test counts those).
 */
const BUDGET_KB = 150;
const PERSON_PAGE = 'index.html';
const WASM = 'pkg/approdo_wasm_bg.wasm';
// The desk loads the staff build of the core (with credential files); the person's page
// loads the smaller one without.
const wasmFor = (page) => (page === 'desk.html' ? 'pkg-staff/approdo_wasm_bg.wasm' : WASM);
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.wasm', '.svg', '.txt', '.xml', '.webmanifest', '.map']);

const errors = [];
const fail = (msg) => errors.push(msg);
const bail = () => {
  if (errors.length) {
    for (const e of errors) console.error(`build.mjs: ${e}`);
    process.exit(1);
  }
};

if (!existsSync(dist)) {
  console.error(`build.mjs: ${dist} does not exist`);
  process.exit(1);
}

/** Every file under `dir`, as paths relative to `dist` with forward slashes. */
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...walk(full));
    else out.push(relative(dist, full).split(sep).join('/'));
  }
  return out;
}

// Start from a clean slate: stale compressed files would be served for changed sources.
for (const f of walk(dist)) if (f.endsWith('.gz') || f.endsWith('.br')) rmSync(join(dist, f));
let files = walk(dist);
const pages = files.filter((f) => f.endsWith('.html'));

const sri = (rel) => 'sha384-' + createHash('sha384').update(readFileSync(join(dist, rel))).digest('base64');

/** Attributes of a tag's attribute text, names lowercased. */
function attributes(text) {
  const attrs = new Map();
  const re = /([^\s"'=<>\/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  for (const m of text.matchAll(re)) attrs.set(m[1].toLowerCase(), m[2] ?? m[3] ?? m[4] ?? '');
  return attrs;
}

/** A reference from `fromRel` (a file in dist) as a dist-relative path, or an error. */
function resolveRef(fromRel, ref) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(ref) || ref.startsWith('//')) {
    return { error: `${fromRel}: "${ref}" is on another origin (the CSP only allows 'self')` };
  }
  const clean = decodeURIComponent(ref.replace(/[?#].*$/, ''));
  const abs = clean.startsWith('/') ? join(dist, clean) : join(dist, dirname(fromRel), clean);
  const rel = relative(dist, abs).split(sep).join('/');
  if (rel.startsWith('../') || rel === '..') return { error: `${fromRel}: "${ref}" is outside dist/` };
  if (!existsSync(abs) || statSync(abs).isDirectory()) return { error: `${fromRel}: "${ref}" does not exist in dist/`, rel };
  return { rel };
}

// ----- 1. Content-Security-Policy check ---------------------------------------------
for (const page of pages) {
  const html = readFileSync(join(dist, page), 'utf8');
  const tags = html.replace(/<!--[\s\S]*?-->/g, '').matchAll(/<([a-zA-Z][\w-]*)\b([^>]*)>/g);
  for (const [, name, text] of tags) {
    const tag = name.toLowerCase();
    const attrs = attributes(text);
    if (tag === 'style') fail(`${page}: <style> is blocked by the CSP; use a stylesheet`);
    if (tag === 'script' && !attrs.has('src')) fail(`${page}: inline <script> is blocked by the CSP`);
    for (const [attr, value] of attrs) {
      if (attr === 'style') fail(`${page}: style= on <${tag}> is blocked by the CSP`);
      if (attr.startsWith('on')) fail(`${page}: ${attr}= on <${tag}> is blocked by the CSP`);
      if (/^\s*javascript:/i.test(value)) fail(`${page}: javascript: URL on <${tag}> is blocked by the CSP`);
    }
  }
}
bail();

// ----- 2. integrity.json ---------------------------------------------------------------
const manifest = {};
for (const f of files) {
  if (f.endsWith('.html') || f === 'integrity.json') continue;
  manifest['/' + f] = sri(f);
}
writeFileSync(join(dist, 'integrity.json'), JSON.stringify(manifest, null, 1) + '\n');
files = walk(dist);

// ----- 3. Subresource Integrity in pages ---------------------------------------------
const REQUIRED_RELS = new Set(['stylesheet', 'modulepreload']);
/** What each page references (dist-relative), for the weight. */
const references = new Map();
for (const page of pages) {
  const refs = new Set();
  const path = join(dist, page);
  const html = readFileSync(path, 'utf8');
  const out = html.replace(/<(script|link|img)\b([^>]*)>/gi, (whole, name, text) => {
    const tag = name.toLowerCase();
    const attrs = attributes(text);
    const rels = (attrs.get('rel') ?? '').toLowerCase().split(/\s+/);
    const ref = tag === 'link' ? attrs.get('href') : attrs.get('src');
    if (ref === undefined || ref === '') return whole;
    const mustExist = tag === 'script' || (tag === 'link' && rels.some((r) => REQUIRED_RELS.has(r)));
    const preload = tag === 'link' && rels.includes('preload');
    const target = resolveRef(page, ref);
    if (target.error) {
      if (mustExist) fail(target.error);
      // A preload of what the relay serves itself (/config.json) is not in dist/.
      else if (!(preload && target.rel)) console.warn(`build.mjs: warning: ${target.error}`);
      return whole;
    }
    refs.add(target.rel);
    // A preload carries the same integrity as integrity.json gives the script's fetch(), so
    // the two requests match; integrity.json has no entry for itself, nor its preload.
    const wantsSri = mustExist || (preload && target.rel !== 'integrity.json');
    if (!wantsSri) return whole;
    const body = text.replace(/\s+integrity\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi, '');
    const [, head, tail] = body.match(/^([\s\S]*?)(\s*\/?\s*)$/);
    return `<${name}${head} integrity="${sri(target.rel)}"${tail}>`;
  });
  if (out !== html) writeFileSync(path, out);
  references.set(page, refs);
}
bail();

// ----- 3a. Import maps with integrity ----------------------------------------------------
// Chromium does not hold `import` (static or dynamic) to a modulepreload's integrity: a file
// that fails it is fetched again, unchecked. An import map's "integrity" does apply to every
// module fetch, so each page with module scripts gets one listing every module in dist/.
// Import maps are inline scripts: their sha256 goes to csp-script-hashes.txt, which the relay
// embeds into its Content-Security-Policy (nothing else inline is allowed).
{
  const modules = files.filter((f) => /\.m?js$/.test(f)).sort();
  const integrity = Object.fromEntries(modules.map((f) => ['/' + f.split(sep).join('/'), sri(f)]));
  const hashes = new Set();
  for (const page of pages) {
    const path = join(dist, page);
    const html = readFileSync(path, 'utf8');
    if (!/<script\b[^>]*type\s*=\s*["']?module/i.test(html) && !/rel\s*=\s*["']?modulepreload/i.test(html)) continue;
    const map = JSON.stringify({ integrity });
    hashes.add(`'sha256-${createHash('sha256').update(map).digest('base64')}'`);
    // First thing in <head>: an import map must come before any module is requested.
    const out = html.replace(/<head>/i, `<head>\n<script type="importmap">${map}</script>`);
    if (out === html) fail(`${page}: no <head> to put the import map in`);
    writeFileSync(path, out);
  }
  writeFileSync(join(dist, 'csp-script-hashes.txt'), [...hashes].join('\n') + '\n');
}
bail();

// ----- 3c. What the relay preloads with the person's page --------------------------------
// preload-links.txt, one `PATH AS` line per file (AS: fetch, style or module): what
// index.html loads first, for the relay's `Link` header on `/` (relay::preload), which
// the browser acts on while it is still setting up the document, before it parses a byte.
// Order matters on HTTP/1.1, where a browser opens six connections to a host and queues
// the rest: the core's wasm first (the largest file, the last to arrive), then
// integrity.json and /config.json (the relay's own, which the scripts would otherwise only
// request once the manifest is in: one more round trip), then the page's own references in
// document order, the core's JavaScript glue last (useless before the wasm is in). The
// relay adds the translation the browser's languages select (after these) and the
// integrity of every file; the page still checks every file it uses.
{
  const html = readFileSync(join(dist, PERSON_PAGE), 'utf8').replace(/<!--[\s\S]*?-->/g, '');
  const lines = [`/${WASM} fetch`, '/integrity.json fetch', '/config.json fetch'];
  for (const [, name, text] of html.matchAll(/<(script|link)\b([^>]*)>/gi)) {
    const attrs = attributes(text);
    const rels = (attrs.get('rel') ?? '').toLowerCase().split(/\s+/);
    let as = null;
    if (name.toLowerCase() === 'script' && (attrs.get('type') ?? '') === 'module') as = 'module';
    else if (rels.includes('modulepreload')) as = 'module';
    else if (rels.includes('stylesheet')) as = 'style';
    else if (rels.includes('preload') && attrs.get('as') === 'fetch') as = 'fetch';
    const ref = name.toLowerCase() === 'script' ? attrs.get('src') : attrs.get('href');
    if (!as || !ref?.startsWith('/')) continue;
    const line = `${ref} ${as}`;
    if (!lines.includes(line)) lines.push(line);
  }
  const glue = lines.filter((l) => l.startsWith('/pkg/') && !l.startsWith(`/${WASM} `));
  const ordered = [...lines.filter((l) => !glue.includes(l)), ...glue];
  writeFileSync(join(dist, 'preload-links.txt'), ordered.join('\n') + '\n');
}

// ----- 3b. Bundle hash ------------------------------------------------------------------
// One SHA-256 over every file served (path and content, sorted by path), after SRI is in
// the pages. An organisation publishes it; anyone can recompute it from what a relay
// serves (scripts/bundle-hash) and see whether the relay serves the published pages.
{
  const bundle = createHash('sha256');
  for (const f of [...files].filter((f) => f !== 'bundle.sha256').sort()) {
    bundle.update(`/${f.split(sep).join('/')}\0${createHash('sha256').update(readFileSync(join(dist, f))).digest('hex')}\n`);
  }
  const hex = bundle.digest('hex');
  writeFileSync(join(dist, 'bundle.sha256'), hex + '\n');
  console.log(`build hash (the built files alone; publish the bundle hash the relay prints at start, which adds the deployment's config): ${hex}`);
}

// ----- 4. gzip and Brotli ------------------------------------------------------------------
const gzSize = new Map();
const brSize = new Map();
for (const f of files) {
  if (!COMPRESSIBLE.has(extname(f).toLowerCase())) continue;
  const raw = readFileSync(join(dist, f));
  const gz = gzipSync(raw, { level: constants.Z_BEST_COMPRESSION });
  writeFileSync(join(dist, f + '.gz'), gz);
  gzSize.set(f, gz.length);
  const br = brotliCompressSync(raw, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_LGWIN]: constants.BROTLI_MAX_WINDOW_BITS,
      [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  });
  writeFileSync(join(dist, f + '.br'), br);
  brSize.set(f, br.length);
}

// ----- 5. Page weight ------------------------------------------------------------------
/**
 * Modules and files a script loads by itself as it starts: static imports and
 * `new URL(…, import.meta.url)`. A dynamic `import("…")` is not followed: the pages use it for
 * what they load later (the person's call code, once staff are in the conversation).
 */
function scriptDependencies(rel) {
  const js = readFileSync(join(dist, rel), 'utf8');
  const found = [];
  const patterns = [
    /\bimport\s*(?:[\w$*{}\s,]+?\s*from\s*)?["']([^"'\n]+)["']/g,
    /\bexport\s*[\w$*{}\s,]*?\s*from\s*["']([^"'\n]+)["']/g,
    /\bnew\s+URL\(\s*["']([^"'\n]+)["']\s*,\s*import\.meta\.url\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of js.matchAll(re)) {
      const spec = m[1];
      if (!/^(\.{1,2}\/|\/)/.test(spec)) continue;
      const target = resolveRef(rel, spec);
      if (target.rel && !target.error) found.push(target.rel);
    }
  }
  return found;
}

const i18n = files.filter((f) => /^i18n\/[^/]+\.json$/.test(f));
// The largest translation, so the figure holds for every language.
const heaviestI18n = i18n.sort((a, b) => (brSize.get(b) ?? 0) - (brSize.get(a) ?? 0))[0];
const kb = (bytes) => (bytes / 1000).toFixed(1);

/**
 * What a page fetches on first load: itself, what it references, what its scripts import,
 * and, for a page with scripts, the core, one translation and integrity.json (what the
 * scripts fetch by computed paths). /config.json is served by the relay and not counted.
 */
function firstLoad(page) {
  const refs = [...(references.get(page) ?? [])];
  const queue = [...refs];
  if (page === PERSON_PAGE || refs.some((f) => /\.m?js$/.test(f))) {
    // The exit page's script only translates it: no core.
    const core = page === 'exit.html' ? [] : [wasmFor(page)];
    for (const extra of [...core, heaviestI18n, 'integrity.json']) {
      if (extra && files.includes(extra)) queue.push(extra);
    }
  }
  const load = new Set([page]);
  while (queue.length) {
    const f = queue.shift();
    if (load.has(f)) continue;
    load.add(f);
    if (/\.m?js$/.test(f)) queue.push(...scriptDependencies(f));
  }
  return [...load];
}

let personTotal;
for (const page of pages) {
  const load = firstLoad(page);
  const size = (f) => brSize.get(f) ?? statSync(join(dist, f)).size;
  const gzip = (f) => gzSize.get(f) ?? statSync(join(dist, f)).size;
  const total = load.reduce((sum, f) => sum + size(f), 0);
  const gzTotal = load.reduce((sum, f) => sum + gzip(f), 0);
  const name = page === PERSON_PAGE ? 'person' : page.replace(/\.html$/, '');
  const wasm = load.includes(wasmFor(page)) ? ` (wasm ${kb(size(wasmFor(page)))} KB)` : '';
  console.log(`page weight (${name}, first load): ${kb(total)} KB Brotli${wasm}, ${kb(gzTotal)} KB gzip`);
  for (const f of load) console.log(`    ${kb(size(f)).padStart(7)} KB  /${f}`);
  if (page === PERSON_PAGE) personTotal = total;
}
if (personTotal === undefined) {
  fail(`no ${PERSON_PAGE} in ${dist}: the person's page is missing`);
} else if (personTotal > BUDGET_KB * 1000) {
  fail(`the person's page weighs ${kb(personTotal)} KB (Brotli), over the ${BUDGET_KB} KB budget`);
} else {
  console.log(`person's first load: ${kb(personTotal)} KB of the ${BUDGET_KB} KB budget`);
}
bail();
