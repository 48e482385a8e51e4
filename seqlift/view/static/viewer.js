"use strict";
// seqlift view: a table of sequences (or variants) and the contribution logo of the one selected.
// Data come from the local server (mode "server") or from the page itself (mode "file"); see page.py.

const config = JSON.parse(document.getElementById("config").textContent);
const SVG = "http://www.w3.org/2000/svg";
const BASES = "ACGT";
const COLOURS = { A: "#109648", C: "#255C99", G: "#F7B32B", T: "#D62839" };
const LABELS = {
  name: "name", coords: "coordinates", prediction: "prediction", total: "total contribution",
  delta: "convergence delta", ref_prediction: "ref prediction", alt_prediction: "alt prediction",
  effect: "effect (alt − ref)", p_value: "p-value", q_value: "q-value",
};
const PAGE = 50;

// ---------------------------------------------------------------------------------------------- letters
// Each letter is polygons in a unit box (x right, y down); it fills [0, 1] × [0, 1] exactly, so a glyph drawn
// in a box of height h is h tall: letter heights are the scores.
function ring(rx, ry, from, to, step) {
  const points = [];
  for (let a = from; a <= to; a += step) {
    const r = (a * Math.PI) / 180;
    points.push([0.5 + rx * Math.cos(r), 0.5 - ry * Math.sin(r)]);
  }
  return points;
}
const C_SHAPE = ring(0.5, 0.5, 35, 325, 5).concat(ring(0.28, 0.3, 35, 325, 5).reverse());
const GLYPHS = {
  A: [[[0, 1], [0.38, 0], [0.62, 0], [1, 1], [0.78, 1], [0.67, 0.7], [0.33, 0.7], [0.22, 1]],
      [[0.39, 0.52], [0.5, 0.2], [0.61, 0.52]]],
  C: [C_SHAPE],
  G: [C_SHAPE, [[0.5, 0.5], [0.74, 0.5], [0.74, 0.62], [0.5, 0.62]]],
  T: [[[0, 0], [1, 0], [1, 0.18], [0.6, 0.18], [0.6, 1], [0.4, 1], [0.4, 0.18], [0, 0.18]]],
};

function glyphPath(base, x, top, width, height) {
  return GLYPHS[base].map((polygon) => "M" + polygon.map(([u, v]) =>
    `${(x + u * width).toFixed(4)},${top + v * height}`).join("L") + "Z").join("");
}

// ---------------------------------------------------------------------------------------------- data
function floats(b64) {
  const text = atob(b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function parseRegion(text) {
  const found = /^(.+):(\d+)-(\d+)$/.exec(text.trim());
  return found ? { chrom: found[1], start: +found[2], end: +found[3] } : null;
}

function place(coords) {
  // "chr1:100-1100", "chr1:100-1100(-)" (scores) or "chr1:1234" (variants): chrom and span
  const region = parseRegion(coords.replace("(-)", ""));
  if (region) return region;
  const point = /^(.+):(\d+)$/.exec(coords);
  return point ? { chrom: point[1], start: +point[2] - 1, end: +point[2] } : null;
}

const server = {
  async get(path, params = {}) {
    const response = await fetch(`${path}?${new URLSearchParams({ ...params, token: config.token })}`);
    if (!response.ok) throw new Error(await response.text());
    return response.json();
  },
  meta() { return this.get("/api/meta"); },
  rows(q) {
    return this.get("/api/rows", { task: q.task, sort: q.sort, desc: q.desc ? 1 : 0, q: q.query, offset: q.offset,
                                   limit: PAGE });
  },
  record(i, task) { return this.get("/api/record", { i, task }); },
  motifs() { return this.get("/api/motifs"); },
  seqlets(pattern) { return this.get("/api/seqlets", { pattern }); },
  hits(motif) { return this.get("/api/hits", { motif }); },
  logo(pattern) { return `/motif/${encodeURIComponent(pattern)}.png?token=${encodeURIComponent(config.token)}`; },
};

const inline = {
  data: config.data,
  taskIndex(task) { return this.data.meta.tasks.indexOf(+task); },
  async meta() { return this.data.meta; },
  async rows(q) {
    let rows = this.data.rows[this.taskIndex(q.task)];
    const query = q.query.trim().toLowerCase();
    if (query) {
      const region = parseRegion(query);
      rows = rows.filter((row) => {
        if (!region) return row.name.toLowerCase().includes(query);
        const at = place(row.coords);
        return at && at.chrom.toLowerCase() === region.chrom && at.start < region.end && at.end > region.start;
      });
    }
    if (q.sort) {
      const bySize = this.data.meta.by_size.includes(q.sort);
      const key = (row) => (bySize && row[q.sort] !== null ? Math.abs(row[q.sort]) : row[q.sort]);
      rows = rows.slice().sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        const order = typeof x === "string" ? x.localeCompare(y) : x - y;
        return q.desc ? -order : order;
      });
    }
    return { total: rows.length, offset: q.offset, rows: rows.slice(q.offset, q.offset + PAGE) };
  },
  async record(i, task) { return this.data.records[this.taskIndex(task)][String(i)]; },
  async motifs() { return this.data.motifs; },
  async seqlets(pattern) { return this.data.seqlets[pattern] || []; },
  async hits(motif) { return this.data.hits[motif] || []; },
  logo(pattern) { return this.data.logos[pattern] || ""; },
};

const source = config.mode === "server" ? server : inline;

// ---------------------------------------------------------------------------------------------- state
const state = {
  meta: null, task: 0, sort: "", desc: true, query: "", offset: 0, total: 0,
  selected: null, record: null, view: [0, 0], hypothetical: false, hiddenMotifs: new Set(),
};
const $ = (id) => document.getElementById(id);

function number(value) {
  if (value === null || value === undefined) return "";
  const size = Math.abs(value);
  return size !== 0 && (size < 1e-3 || size >= 1e5) ? value.toExponential(2) : value.toPrecision(4);
}

// ---------------------------------------------------------------------------------------------- table
function columns() {
  return ["name", "coords", ...state.meta.columns];
}

function drawHeader() {
  const row = document.createElement("tr");
  for (const key of columns()) {
    const cell = document.createElement("th");
    cell.textContent = LABELS[key] || key;
    cell.dataset.key = key;
    if (state.meta.by_size.includes(key)) cell.title = "sorted by size (|value|): the strongest of either sign first";
    if (key === state.sort) cell.className = state.desc ? "sorted" : "sorted ascending";
    cell.addEventListener("click", () => {
      state.desc = state.sort === key ? !state.desc : !(key === "name" || key === "coords");
      state.sort = key;
      state.offset = 0;
      drawHeader();
      loadRows();
    });
    row.append(cell);
  }
  $("rows").tHead.replaceChildren(row);
}

async function loadRows() {
  const answer = await source.rows({ task: state.meta.tasks[state.task], sort: state.sort, desc: state.desc,
                                     query: state.query, offset: state.offset });
  state.total = answer.total;
  const body = document.createElement("tbody");
  for (const row of answer.rows) {
    const line = document.createElement("tr");
    line.dataset.i = row.i;
    if (row.i === state.selected) line.className = "selected";
    for (const key of columns()) {
      const cell = document.createElement("td");
      const value = row[key];
      cell.textContent = typeof value === "number" ? number(value) : (value ?? "");
      if (value === null && key === "total") cell.innerHTML = '<span class="status">…</span>';
      if (key === "name") { cell.className = "name"; cell.title = value; }
      line.append(cell);
    }
    line.addEventListener("click", () => select(row.i));
    body.append(line);
  }
  $("rows").replaceChild(body, $("rows").tBodies[0]);
  const last = Math.min(state.offset + PAGE, state.total);
  $("page").textContent = state.total ? `${state.offset + 1}–${last} of ${state.total}` : "no rows match";
  $("prev").disabled = state.offset === 0;
  $("next").disabled = last >= state.total;
  return answer.rows;
}

// ---------------------------------------------------------------------------------------------- logos
function scoresOf(allele) {
  return floats(state.hypothetical ? allele.hypothetical : allele.contrib);
}

function stacks(values, length) {
  // per position: [base index, bottom, top] of each letter; positive scores stacked up from 0 (the smallest
  // nearest the axis), negative ones down
  const out = [];
  let low = 0, high = 0;
  for (let i = 0; i < length; i++) {
    const row = [0, 1, 2, 3].map((b) => [b, values[i * 4 + b]]);
    let up = 0, down = 0;
    for (const [b, v] of row.filter(([, v]) => v >= 0).sort((x, y) => x[1] - y[1])) { out.push([i, b, v, up, up + v]); up += v; }
    for (const [b, v] of row.filter(([, v]) => v < 0).sort((x, y) => y[1] - x[1])) { out.push([i, b, v, down + v, down]); down += v; }
    high = Math.max(high, up);
    low = Math.min(low, down);
  }
  return { letters: out, low, high };
}

function logoBlock(label, allele, range, marks) {
  const length = allele.sequence.length;
  const block = document.createElement("div");
  block.className = "logo-block";
  const title = document.createElement("div");
  title.className = "logo-label";
  title.textContent = label;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "logo");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.dataset.low = range.low;
  svg.dataset.high = range.high;
  const base = document.createElementNS(SVG, "line");
  base.setAttribute("x1", 0); base.setAttribute("x2", length); base.setAttribute("y1", 0); base.setAttribute("y2", 0);
  base.setAttribute("stroke", "#999"); base.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(base);
  for (const mark of marks) svg.append(mark(range));
  for (const [i, b, v, bottom, top] of range.stack.letters) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("class", "glyph");
    path.setAttribute("d", glyphPath(BASES[b], i + 0.05, -top, 0.9, top - bottom));
    path.setAttribute("fill", COLOURS[BASES[b]]);
    path.setAttribute("fill-rule", "evenodd");
    path.dataset.i = i; path.dataset.base = BASES[b]; path.dataset.score = v;
    svg.append(path);
  }
  const axis = document.createElementNS(SVG, "svg");
  axis.setAttribute("class", "axis");
  block.append(title, svg, axis);
  svg.addEventListener("mousemove", (event) => hover(event, svg, allele));
  svg.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  svg.addEventListener("wheel", (event) => { event.preventDefault(); zoomAt(event, svg, event.deltaY < 0 ? 0.5 : 2); },
                       { passive: false });
  svg.addEventListener("mousedown", (event) => drag(event, svg));
  return block;
}

function box(kind, start, end, range, data) {
  const rect = document.createElementNS(SVG, "rect");
  rect.setAttribute("class", kind);
  rect.setAttribute("x", start);
  rect.setAttribute("width", end - start);
  rect.setAttribute("y", -range.high);
  rect.setAttribute("height", range.high - range.low || 1);
  for (const [key, value] of Object.entries(data)) rect.dataset[key] = value;
  return rect;
}

function seqletMarks(record) {
  return (record.seqlets || []).map((s) => (range) => {
    const rect = box("seqlet", s.start, s.end, range, { pattern: s.pattern, start: s.start, end: s.end });
    rect.setAttribute("fill", "rgba(120, 120, 220, 0.16)");
    rect.setAttribute("stroke", "#6b6bd6");
    rect.setAttribute("vector-effect", "non-scaling-stroke");
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = `${s.pattern}${s.match ? " (" + s.match + ")" : ""} ${s.start}-${s.end} ${s.strand}`;
    rect.append(tip);
    return rect;
  });
}

// one colour per hit motif, in the order the meta lists them
const HIT_COLOURS = ["#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#0072b2", "#999999", "#f0e442"];

function hitColour(motif) {
  const k = state.meta.hit_motifs.findIndex((m) => m.motif === motif);
  return HIT_COLOURS[(k < 0 ? 0 : k) % HIT_COLOURS.length];
}

function hitMarks(record) {
  return (record.hits || []).filter((h) => !state.hiddenMotifs.has(h.motif)).map((h) => (range) => {
    const rect = box("hit", h.start, h.end, range, { motif: h.motif, start: h.start, end: h.end, strand: h.strand });
    rect.setAttribute("fill", "none");
    rect.setAttribute("stroke", hitColour(h.motif));
    rect.setAttribute("stroke-width", 2);
    rect.setAttribute("vector-effect", "non-scaling-stroke");
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = `${h.motif}${h.match ? " (" + h.match + ")" : ""} ${h.start}-${h.end} ${h.strand} ` +
      `coefficient ${number(h.coefficient)}`;
    rect.append(tip);
    return rect;
  });
}

function variantMark(index, span) {
  return (range) => {
    const rect = box("variant", index, index + Math.max(span, 0.3), range, { index, span });
    rect.setAttribute("fill", "rgba(230, 60, 60, 0.16)");
    rect.setAttribute("stroke", "#d33");
    rect.setAttribute("vector-effect", "non-scaling-stroke");
    return rect;
  };
}

function drawRecord() {
  const record = state.record;
  const variants = state.meta.kind === "variants";
  const alleles = variants ? [["ref", record.ref], ["alt", record.alt]] : [["", record]];
  const what = state.hypothetical ? "hypothetical contribution" : "contribution";
  const ranges = alleles.map(([, allele]) => ({ stack: stacks(scoresOf(allele), allele.sequence.length) }));
  const low = Math.min(...ranges.map((r) => r.stack.low)), high = Math.max(...ranges.map((r) => r.stack.high));
  const pad = (high - low || 1) * 0.05;
  const blocks = alleles.map(([side, allele], k) => {
    const range = { stack: ranges[k].stack, low: low - pad, high: high + pad };  // one y scale for both alleles
    if (!variants) {
      return logoBlock(`${what} · prediction ${number(allele.prediction)} · delta ${number(record.delta)}`, allele,
                       range, [...seqletMarks(record), ...hitMarks(record)]);
    }
    const letters = record[`${side}_allele`];
    return logoBlock(`${side} allele ${letters} · ${what} · prediction ${number(allele.prediction)}`, allele, range,
                     [variantMark(record.variant_index, letters.length)]);
  });
  $("logos").replaceChildren(...blocks);
  $("logos").dataset.i = record.i;  // which record (and task) is drawn: what a reader (or a test) waits for
  $("logos").dataset.task = state.task;
  const length = alleles[0][1].sequence.length;
  if (state.view[1] <= state.view[0] || state.view[1] > length) state.view = [0, length];
  $("controls").hidden = false;
  const where = record.coords ? ` · ${record.coords}` : "";
  $("title").textContent = variants
    ? `${record.name}${where} ${record.ref_allele}>${record.alt_allele} · effect ${number(record.effect)}` +
      (record.p_value !== null && record.p_value !== undefined ? ` · p ${number(record.p_value)}` : "")
    : `${record.name}${where}`;
  applyView();
}

function applyView() {
  const [x0, x1] = state.view;
  for (const svg of document.querySelectorAll("svg.logo")) {
    svg.setAttribute("viewBox", `${x0} ${-svg.dataset.high} ${x1 - x0} ${svg.dataset.high - svg.dataset.low}`);
  }
  for (const axis of document.querySelectorAll("svg.axis")) drawAxis(axis);
  $("window").textContent = `positions ${Math.round(x0)}–${Math.round(x1)} of ${state.record ? lengthOf() : 0}`;
}

function lengthOf() {
  const record = state.record;
  return (state.meta.kind === "variants" ? record.ref : record).sequence.length;
}

function genomePosition(record, i) {
  if (record.start === null || record.start === undefined) return null;
  const length = lengthOf();
  return record.strand === "-" ? record.start + length - 1 - i : record.start + i;
}

function drawAxis(axis) {
  const [x0, x1] = state.view;
  const step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000].find((s) => (x1 - x0) / s <= 10) || 20000;
  const ticks = [];
  for (let t = Math.ceil(x0 / step) * step; t < x1; t += step) {
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("x", `${((t + 0.5 - x0) / (x1 - x0)) * 100}%`);
    text.setAttribute("y", 12);
    text.setAttribute("text-anchor", "middle");
    const genome = genomePosition(state.record, t);
    text.textContent = genome === null ? t : genome.toLocaleString("en-US");
    ticks.push(text);
  }
  axis.replaceChildren(...ticks);
}

function zoom(factor, centre) {
  const length = lengthOf();
  const [x0, x1] = state.view;
  const width = Math.min(length, Math.max(8, (x1 - x0) * factor));
  const middle = centre ?? (x0 + x1) / 2;
  const start = Math.max(0, Math.min(length - width, middle - width / 2));
  state.view = [start, start + width];
  applyView();
}

function pan(fraction) {
  const length = lengthOf();
  const [x0, x1] = state.view;
  const shift = Math.max(-x0, Math.min(length - x1, (x1 - x0) * fraction));
  state.view = [x0 + shift, x1 + shift];
  applyView();
}

function toData(svg, event) {
  const point = svg.createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  return point.matrixTransform(svg.getScreenCTM().inverse());
}

function zoomAt(event, svg, factor) {
  zoom(factor, toData(svg, event).x);
}

function drag(event, svg) {
  const startX = event.clientX, view = state.view.slice();
  const perPixel = (view[1] - view[0]) / svg.getBoundingClientRect().width;
  const move = (e) => {
    state.view = view;
    pan((startX - e.clientX) * perPixel / (view[1] - view[0]));
  };
  const up = () => { window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up); };
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", up);
}

function hover(event, svg, allele) {
  const i = Math.floor(toData(svg, event).x);
  const length = allele.sequence.length;
  if (i < 0 || i >= length) { $("tooltip").hidden = true; return; }
  const values = scoresOf(allele);
  const observed = allele.sequence[i];
  const genome = genomePosition(state.record, i);
  const lines = [`position ${i}` + (genome === null ? "" : ` · ${state.record.chrom}:${genome.toLocaleString("en-US")}`),
                 `base ${observed}`];
  if (state.hypothetical) {
    lines.push([0, 1, 2, 3].map((b) => `${BASES[b]} ${number(values[i * 4 + b])}`).join("  "));
  } else {
    const b = BASES.indexOf(observed);
    lines.push(`score ${number(b < 0 ? 0 : values[i * 4 + b])}`);
  }
  const tip = $("tooltip");
  tip.textContent = lines.join("\n");
  tip.style.left = `${event.clientX + 14}px`;
  tip.style.top = `${event.clientY + 10}px`;
  tip.hidden = false;
}

// ---------------------------------------------------------------------------------------------- selection
async function select(i) {
  state.selected = i;
  for (const line of $("rows").tBodies[0].rows) line.classList.toggle("selected", +line.dataset.i === i);
  const record = await source.record(i, state.meta.tasks[state.task]);
  if (state.selected !== i) return;  // another row was chosen meanwhile
  // the zoom stays for the same sequence (another task, hypothetical scores); another row starts whole
  const keep = state.record && state.record.i === i && lengthOf() === (record.ref || record).sequence.length;
  state.record = record;
  if (!keep) state.view = [0, 0];
  drawRecord();
}

function drawHitMotifs() {
  const motifs = state.meta.hit_motifs || [];
  if (!motifs.length) return;
  $("hit-panel").hidden = false;
  const rows = motifs.map((m) => {
    const row = document.createElement("div");
    row.className = "hit-motif";
    const show = document.createElement("input");
    show.type = "checkbox";
    show.checked = true;
    show.dataset.motif = m.motif;
    show.title = "draw this motif's instances";
    show.addEventListener("change", () => {
      if (show.checked) state.hiddenMotifs.delete(m.motif); else state.hiddenMotifs.add(m.motif);
      if (state.record) drawRecord();
    });
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.borderColor = hitColour(m.motif);
    const name = document.createElement("a");
    name.href = "#";
    name.textContent = `${m.motif}${m.match ? " (" + m.match + ")" : ""} · ${m.n} hits`;
    name.addEventListener("click", (event) => { event.preventDefault(); showHits(m.motif); });
    row.append(show, swatch, name);
    return row;
  });
  $("hit-motifs").replaceChildren(...rows);
}

function zoomLink(span, text) {
  // a link that opens row span.i zoomed on [span.start, span.end) with 20 bp either side
  const link = document.createElement("a");
  link.href = "#";
  link.textContent = text;
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    await select(span.i);
    state.view = [Math.max(0, span.start - 20), Math.min(lengthOf(), span.end + 20)];
    applyView();
  });
  return link;
}

async function showHits(motif) {
  const hits = await source.hits(motif);
  const links = hits.slice(0, 200).map((h) => {
    const link = zoomLink(h, `${h.name} ${h.start}-${h.end} ${h.strand} (${number(h.coefficient)})`);
    link.className = "hit-link";
    return link;
  });
  const title = document.createElement("div");
  title.textContent = `${motif}: ${hits.length} hits, strongest first` + (hits.length > 200 ? " (first 200)" : "");
  $("hit-list").replaceChildren(title, ...links);
}

async function drawMotifs() {
  const motifs = await source.motifs();
  if (!motifs.length) return;
  $("motif-panel").hidden = false;
  const cards = motifs.map((m) => {
    const card = document.createElement("div");
    card.className = "motif";
    card.dataset.pattern = m.pattern;
    const name = document.createElement("div");
    name.textContent = `${m.pattern} · ${m.n_seqlets} seqlets` + (m.match ? ` · ${m.match} (q ${number(m.q_value)})` : "");
    card.append(name);
    if (m.has_logo) {
      const image = document.createElement("img");
      image.src = source.logo(m.pattern);
      image.alt = `${m.pattern} CWM`;
      card.append(image);
    }
    const consensus = document.createElement("code");
    consensus.textContent = m.consensus;
    card.append(consensus);
    card.addEventListener("click", () => showSeqlets(m.pattern, card));
    return card;
  });
  $("motifs").replaceChildren(...cards);
}

async function showSeqlets(pattern, card) {
  for (const other of document.querySelectorAll(".motif")) other.classList.toggle("selected", other === card);
  const seqlets = await source.seqlets(pattern);
  const links = seqlets.slice(0, 200).map((s) => zoomLink(s, `${s.name} ${s.start}-${s.end}`));
  const more = seqlets.length > 200 ? ` (first 200 of ${seqlets.length})` : "";
  const title = document.createElement("div");
  title.textContent = `${pattern}: ${seqlets.length} seqlets${more}`;
  $("motif-seqlets").replaceChildren(title, ...links);
}

// ---------------------------------------------------------------------------------------------- start
async function pollTotals() {
  // a large score file's totals are summed in the background: refresh the table when they are complete
  const meta = await source.meta();
  if (meta.totals_done < meta.n) {
    setTimeout(pollTotals, 1000);
    return;
  }
  state.meta = meta;
  loadRows();
}

async function start() {
  state.meta = await source.meta();
  const meta = state.meta;
  const shown = meta.n_file && meta.n_file !== meta.n ? `${meta.n} of ${meta.n_file}` : `${meta.n}`;
  $("file").textContent = `${meta.file} · ${shown} ${meta.kind === "variants" ? "variants" : "sequences"} · ` +
    `${meta.length} bp · ${meta.method} (${meta.rule || "-"}) · target ${meta.target}`;
  $("task").replaceChildren(...meta.tasks.map((t, k) => new Option(`${t}`, k)));
  state.sort = meta.kind === "variants" ? "effect" : "prediction";
  $("task").addEventListener("change", () => { state.task = +$("task").value; loadRows(); if (state.selected !== null) select(state.selected); });
  $("hypothetical").addEventListener("change", () => { state.hypothetical = $("hypothetical").checked; if (state.record) drawRecord(); });
  let typing = null;
  $("filter").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.query = $("filter").value; state.offset = 0; loadRows(); }, 250);
  });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadRows(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; loadRows(); });
  $("zoom-in").addEventListener("click", () => zoom(0.5));
  $("zoom-out").addEventListener("click", () => zoom(2));
  $("pan-left").addEventListener("click", () => pan(-0.25));
  $("pan-right").addEventListener("click", () => pan(0.25));
  $("reset").addEventListener("click", () => { state.view = [0, lengthOf()]; applyView(); });
  document.addEventListener("keydown", (event) => {
    if (!state.record || event.target.tagName === "INPUT") return;
    const keys = { "+": () => zoom(0.5), "=": () => zoom(0.5), "-": () => zoom(2), ArrowLeft: () => pan(-0.25),
                   ArrowRight: () => pan(0.25) };
    if (keys[event.key]) keys[event.key]();
  });
  drawHeader();
  const rows = await loadRows();
  drawMotifs();
  drawHitMotifs();
  if (meta.totals_done !== undefined && meta.totals_done < meta.n) setTimeout(pollTotals, 1000);
  if (rows.length) await select(rows[0].i);
  document.body.dataset.ready = "1";
}

start().catch((error) => {
  $("title").textContent = `error: ${error.message}`;
  document.body.dataset.ready = "error";
});
