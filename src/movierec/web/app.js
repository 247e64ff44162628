// movierec's page: plain DOM over the HTTP API of `movierec serve`, no framework, no build step.
// Three views picked by the URL hash: #/rate (fold-in recommendations for you), #/users/ID
// (a known user) and #/model (how the model did). Data is always put in the page with
// textContent, never innerHTML, so titles cannot inject markup.
"use strict";

const K = 10; // length of every recommendation list
const SEARCH_DELAY_MS = 120; // search as you type, once typing pauses
const SVG = "http://www.w3.org/2000/svg";

// ---------------------------------------------------------------- small helpers

const $ = (sel, root = document) => root.querySelector(sel);

/** Element with attributes (on*: listeners, dataset: data-*) and children (strings are text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  setAttrs(node, attrs);
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
}

const fmt = (x, digits = 3) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–");
const count = (n) => (typeof n === "number" ? n.toLocaleString("en") : "–");
const key = (id) => String(id); // raw ids may be numbers or strings; maps key them as text

function note(node, text, isError = false) {
  node.textContent = text;
  node.classList.toggle("error", isError);
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {}

/** GET or POST JSON; a non-2xx answer becomes an ApiError with the server's message. */
async function api(path, { body, signal } = {}) {
  const init = body === undefined ? { signal } : {
    method: "POST", signal, body: JSON.stringify(body), headers: { "content-type": "application/json" },
  };
  const res = await fetch(path, init);
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const detail = data && data.detail;
    const text = typeof detail === "string" ? detail
      : Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : `HTTP ${res.status}`;
    throw new ApiError(text);
  }
  return data;
}

/** The list in an answer, whichever key holds it. */
function listOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  for (const k of keys) if (data && Array.isArray(data[k])) return data[k];
  return [];
}

const isAbort = (e) => e && e.name === "AbortError";

// ---------------------------------------------------------------- state

const state = {
  health: null,
  scale: null, // [lowest, highest] rating of the model, from GET /model
  /** item key -> {item_id, title, rating}: this visitor's ratings, in the order given. */
  ratings: new Map(),
  /** item key -> title, from every answer seen, to name the movies behind a reason. */
  titles: new Map(),
  searchCtrl: null,
  recsCtrl: null,
  changedAt: null, // performance.now() of the latest rating change not yet on screen
  model: null, // GET /model, once fetched
  modelShown: false,
  userCtrl: null,
  similarCtrl: null,
};

function storageKey() {
  const h = state.health || {};
  return `movierec.ratings:${h.model}:${h.n_users}x${h.n_items}`;
}

function saveRatings() {
  try {
    localStorage.setItem(storageKey(), JSON.stringify([...state.ratings.values()]));
  } catch { /* private mode or full: ratings just do not survive a reload */ }
}

function loadRatings() {
  try {
    for (const r of JSON.parse(localStorage.getItem(storageKey()) || "[]")) {
      state.ratings.set(key(r.item_id), r);
      state.titles.set(key(r.item_id), r.title);
    }
  } catch { /* a corrupt entry: start afresh */ }
}

function remember(items) {
  for (const it of items) if (it.title) state.titles.set(key(it.item_id), it.title);
}

// ---------------------------------------------------------------- stars

let starGroupSeq = 0;

/** Five radio buttons: arrow keys move and rate, 1-5 rate, 0/Delete clear. */
function stars(item, where) {
  const name = `stars-${where}-${++starGroupSeq}`;
  const current = state.ratings.get(key(item.item_id));
  const group = el("fieldset", { class: "stars", dataset: { item: key(item.item_id) } },
    el("legend", {}, `Your rating of ${item.title || item.item_id}`));
  for (let s = 1; s <= 5; s++) {
    const id = `${name}-${s}`;
    const input = el("input", {
      type: "radio", name, id, value: s, checked: current && current.rating === s,
      "aria-label": `${s} star${s > 1 ? "s" : ""}`,
      onchange: () => rate(item, s),
    });
    group.append(input, el("label", { for: id, "aria-hidden": "true", title: `${s} of 5` }, "★"));
  }
  group.addEventListener("keydown", (e) => {
    if (e.key >= "1" && e.key <= "5") {
      e.preventDefault();
      const input = group.querySelector(`input[value="${e.key}"]`);
      input.checked = true;
      input.focus();
      rate(item, Number(e.key));
    } else if (e.key === "0" || e.key === "Delete" || e.key === "Backspace") {
      e.preventDefault();
      unrate(item.item_id);
    }
  });
  return group;
}

/** Every star group of an item shows its current rating (search results and "your ratings"). */
function syncStars(itemKey) {
  const r = state.ratings.get(itemKey);
  for (const group of document.querySelectorAll(`.stars[data-item="${CSS.escape(itemKey)}"]`)) {
    for (const input of group.querySelectorAll("input")) input.checked = !!r && Number(input.value) === r.rating;
  }
}

// ---------------------------------------------------------------- rating and fold-in recommendations

/** A number of stars as a rating on the model's scale: as is where 1..5 fits (MovieLens), else spread over it. */
function starsToScale(stars) {
  const [lo, hi] = state.scale || [1, 5];
  // Stars are the rating on five-star scales (0.5-5, 1-5); on any other, 1..5 stars span lo..hi.
  return lo <= 1 && hi === 5 ? stars : lo + ((stars - 1) * (hi - lo)) / 4;
}

function rate(item, rating) {
  const k = key(item.item_id);
  const isNew = !state.ratings.has(k);
  state.ratings.set(k, { item_id: item.item_id, title: item.title, rating });
  state.titles.set(k, item.title);
  state.changedAt = performance.now();
  saveRatings();
  syncStars(k);
  if (isNew) renderMine();
  requestRecs();
}

function unrate(itemId) {
  const k = key(itemId);
  if (!state.ratings.delete(k)) return;
  state.changedAt = performance.now();
  saveRatings();
  syncStars(k);
  renderMine();
  requestRecs();
}

function renderMine() {
  const list = $("#my-ratings");
  // Removing a row must not drop keyboard focus on the floor: remember where it was.
  const focusedRow = document.activeElement && document.activeElement.closest("#my-ratings li");
  const focusIndex = focusedRow ? [...list.children].indexOf(focusedRow) : -1;
  list.replaceChildren(...[...state.ratings.values()].map((r) => el("li", { dataset: { item: key(r.item_id) } },
    el("span", { class: "title" }, r.title || String(r.item_id)),
    el("span", { class: "end" },
      stars(r, "mine"),
      el("button", {
        type: "button", class: "icon", "aria-label": `Remove your rating of ${r.title || r.item_id}`,
        title: "Remove rating", onclick: () => unrate(r.item_id),
      }, "✕")))));
  const n = state.ratings.size;
  $("#mine-count").textContent = n ? `(${n})` : "";
  $("#mine-empty").hidden = n > 0;
  $("#clear-all").hidden = n === 0;
  if (focusIndex >= 0) {
    const row = list.children[Math.min(focusIndex, list.children.length - 1)];
    (row ? row.querySelector("button") : $("#search")).focus();
  }
}

/** Ask for recommendations for the current ratings; a newer change cancels an older request. */
async function requestRecs() {
  const list = $("#recs");
  if (state.recsCtrl) state.recsCtrl.abort();
  const rated = [...state.ratings.values()];
  if (rated.length === 0) {
    state.recsCtrl = null;
    list.replaceChildren();
    list.setAttribute("aria-busy", "false");
    list.dataset.rated = "";
    list.dataset.version = String(Number(list.dataset.version || 0) + 1);
    note($("#recs-note"), "Rate a few movies and recommendations appear here.");
    return;
  }
  const ctrl = new AbortController();
  state.recsCtrl = ctrl;
  const since = state.changedAt ?? performance.now();
  list.setAttribute("aria-busy", "true");
  try {
    const data = await api("recommendations", {
      signal: ctrl.signal,
      body: {
        ratings: rated.map((r) => ({ item_id: r.item_id, rating: starsToScale(r.rating) })),
        k: K,
        exclude: rated.map((r) => r.item_id),
        ignore_unknown: true, // ratings kept in this browser may name movies an older model knew
      },
    });
    if (ctrl.signal.aborted) return;
    renderRecs(data, rated);
    // Measure to the frame that shows the list, not just to the DOM change.
    requestAnimationFrame(() => {
      if (state.recsCtrl !== ctrl) return;
      const ms = performance.now() - since;
      list.dataset.latencyMs = ms.toFixed(1);
      list.dataset.version = String(Number(list.dataset.version || 0) + 1); // lets a test wait for *this* list
      list.setAttribute("aria-busy", "false");
      state.changedAt = null;
    });
  } catch (e) {
    if (isAbort(e)) return;
    list.replaceChildren();
    list.setAttribute("aria-busy", "false");
    note($("#recs-note"), `Could not get recommendations: ${e.message}`, true);
  }
}

const SOURCE_NOTES = {
  "fold-in": "Picked for you from your ratings, without retraining.",
  popular: "None of your movies is known to the model yet, so these are popular, well-rated movies: the same for everyone.",
};
const RATING_NOTES = {
  "bias-fallback": "This rating model cannot fold in a new user, so the ★ shown are your average and each movie's bias.",
};

/** The predicted rating shown beside a listed movie ("" for a model without ratings). */
function predicted(it) {
  return it.rating === null || it.rating === undefined
    ? null : el("span", { class: "score", title: "the rating you would likely give" }, `${fmt(it.rating, 1)}★`);
}

function renderRecs(data, rated) {
  const list = $("#recs");
  const items = listOf(data, "items", "recommendations");
  remember(items);
  list.dataset.rated = rated.map((r) => key(r.item_id)).sort().join(",");
  list.replaceChildren(...items.map((it) => {
    const because = (it.because || []).map((id) => {
      const r = state.ratings.get(key(id));
      return `${state.titles.get(key(id)) || id}${r ? ` (${r.rating}★)` : ""}`;
    });
    return el("li", { dataset: { item: key(it.item_id) } },
      el("div", { class: "line" },
        el("span", { class: "title" }, it.title || String(it.item_id)),
        predicted(it)),
      because.length ? el("div", { class: "why" }, `Because you rated ${joinAnd(because)}`) : null);
  }));
  const source = data.source || (items[0] && items[0].source);
  const ratingNote = RATING_NOTES[items[0] && items[0].rating_source] || "";
  const ignored = (data.ignored || []).length;
  const n = rated.length - ignored;
  const skipped = ignored ? ` ${ignored} of your ratings name movies this model does not know.` : "";
  note($("#recs-note"), items.length
    ? `${SOURCE_NOTES[source] || ""} From ${n} rating${n === 1 ? "" : "s"}.${skipped} ${ratingNote}`.trim()
    : "No recommendations: every movie is rated or excluded.");
}

function joinAnd(parts) {
  return parts.length < 2 ? parts.join("") : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}

// ---------------------------------------------------------------- search

let searchTimer = 0;

async function search(q) {
  clearTimeout(searchTimer);
  if (state.searchCtrl) state.searchCtrl.abort();
  const results = $("#search-results");
  q = q.trim();
  const ctrl = new AbortController();
  state.searchCtrl = ctrl;
  try {
    // An empty box shows popular movies (a new user's list with no ratings): something to rate at once.
    const data = q
      ? await api(`items/search?q=${encodeURIComponent(q)}&limit=20`, { signal: ctrl.signal })
      : await api("recommendations", { signal: ctrl.signal, body: { ratings: [], k: 12 } });
    const items = listOf(data, "items", "results");
    remember(items);
    results.replaceChildren(...items.map((it) => el("li", { dataset: { item: key(it.item_id) } },
      el("span", { class: "title" }, it.title || String(it.item_id)),
      stars(it, "search"))));
    if (!q) note($("#search-note"), items.length ? "Popular movies to start with; rate any you have seen." : "");
    else {
      note($("#search-note"), items.length ? `${items.length} match${items.length > 1 ? "es" : ""} for “${q}”.`
        : `No movie title contains “${q}”.`);
    }
  } catch (e) {
    if (isAbort(e)) return;
    if (q) note($("#search-note"), `Search failed: ${e.message}`, true);
    else results.replaceChildren(); // no popular list from this server: the search box is enough
  }
}

// ---------------------------------------------------------------- a known user

async function showUser(userId) {
  $("#user-id").value = userId;
  if (state.userCtrl) state.userCtrl.abort();
  const ctrl = new AbortController();
  state.userCtrl = ctrl;
  const ratingsList = $("#user-ratings");
  const recsList = $("#user-recs");
  note($("#user-note"), `Loading user ${userId}…`);
  const id = encodeURIComponent(userId);
  try {
    const [rated, recs] = await Promise.all([
      api(`users/${id}/ratings`, { signal: ctrl.signal }),
      api(`users/${id}/recommendations?k=${K}`, { signal: ctrl.signal }),
    ]);
    const ratings = listOf(rated, "ratings", "items")
      .slice()
      .sort((a, b) => b.rating - a.rating || String(a.title).localeCompare(String(b.title)));
    const items = listOf(recs, "items", "recommendations");
    remember(ratings);
    remember(items);
    $("#user-ratings-count").textContent = `(${count(ratings.length)})`;
    ratingsList.replaceChildren(...ratings.map((r) => el("li", { dataset: { item: key(r.item_id) } },
      el("span", { class: "title" }, movieButton(r)),
      el("span", { class: "given", "aria-label": `rated ${r.rating} stars` }, `${r.rating}★`))));
    const titleOf = new Map(ratings.map((r) => [key(r.item_id), r.title || String(r.item_id)]));
    recsList.replaceChildren(...items.map((it) => {
      const because = (it.because || []).map((id) => titleOf.get(key(id)) || String(id));
      return el("li", { dataset: { item: key(it.item_id) } },
        el("div", { class: "line" },
          el("span", { class: "title" }, movieButton(it)),
          predicted(it)),
        because.length ? el("div", { class: "why" }, `Because they rated ${joinAnd(because)}`) : null);
    }));
    const popular = recs.source === "popular" ? " They have no training ratings, so these are popular movies, the same for everyone." : "";
    note($("#user-note"), `User ${userId}: ${count(ratings.length)} training ratings.${popular} Pick a title to see similar movies.`);
  } catch (e) {
    if (isAbort(e)) return;
    ratingsList.replaceChildren();
    recsList.replaceChildren();
    $("#user-ratings-count").textContent = "";
    note($("#user-note"), e.message, true);
  }
}

function movieButton(item) {
  return el("button", {
    type: "button", class: "link", dataset: { item: key(item.item_id) },
    "aria-label": `Similar to ${item.title || item.item_id}`, onclick: () => showSimilar(item),
  }, item.title || String(item.item_id));
}

async function showSimilar(item) {
  if (state.similarCtrl) state.similarCtrl.abort();
  const ctrl = new AbortController();
  state.similarCtrl = ctrl;
  for (const b of document.querySelectorAll("#view-users .selected")) b.classList.remove("selected");
  for (const b of document.querySelectorAll(`#view-users button[data-item="${CSS.escape(key(item.item_id))}"]`)) {
    b.classList.add("selected");
  }
  const list = $("#similar");
  $("#similar-title").textContent = `Similar to ${item.title || item.item_id}`;
  try {
    const data = await api(`items/${encodeURIComponent(item.item_id)}/similar?k=${K}`, { signal: ctrl.signal });
    const items = listOf(data, "items", "similar");
    remember(items);
    list.replaceChildren(...items.map((it) => el("li", { dataset: { item: key(it.item_id) } },
      el("div", { class: "line" },
        el("span", { class: "title" }, movieButton(it)),
        el("span", { class: "score", title: "similarity" }, fmt(it.score ?? it.similarity, 2))))));
    const how = data.source === "co-rating"
      ? "by the raters they share" : `by the ${data.source} ranker's item-to-item weights`;
    note($("#similar-note"), items.length ? `Closest first, ${how}.` : "No similar movies.");
  } catch (e) {
    if (isAbort(e)) return;
    list.replaceChildren();
    note($("#similar-note"), e.message, true);
  }
  if (matchMedia("(max-width: 800px)").matches) $("#similar-title").scrollIntoView({ block: "start" });
}

// ---------------------------------------------------------------- charts (inline SVG, no library)

// Charts are drawn at their box's pixel width (and redrawn when it changes), so their
// text stays at a readable 12px on a phone and on a wide screen alike.

const SERIES = ["var(--series-1)", "var(--series-2)", "var(--series-3)"];

/** "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten. */
function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

const tickText = (v) => (Math.abs(v) >= 1000 ? count(v) : String(+v.toPrecision(4)));

/** A figure whose SVG ``draw(width)`` makes; redrawn whenever the figure's width changes. */
function chartBox({ id, title, legend, caption, table, draw, wide = false }) {
  const holder = el("div", { class: "plot" });
  const fig = el("figure", { class: `chart panel${wide ? " wide" : ""}`, id },
    el("h3", {}, title),
    legend && legend.length > 1 ? el("ul", { class: "legend" }, legend.map(([name, color]) =>
      el("li", {}, el("span", { style: `background:${color}` }), name))) : null,
    holder,
    caption ? el("figcaption", { class: "caption" }, caption) : null,
    table ? el("details", {}, el("summary", {}, "Show the numbers"), el("div", { class: "scroll" }, table)) : null);
  let drawn = 0;
  new ResizeObserver(([entry]) => {
    const width = Math.floor(entry.contentRect.width);
    if (width > 0 && width !== drawn) {
      drawn = width;
      const node = draw(width);
      node.setAttribute("role", "img");
      node.setAttribute("aria-label", `${title} (chart; the numbers are in the table below it)`);
      holder.replaceChildren(node);
    }
  }).observe(holder);
  return fig;
}

/** The y side every vertical chart shares: grid, tick labels, axis title; returns the y scale. */
function yFrame(root, { w, h, pad, yMin, yMax, yLabel, format = tickText }) {
  const ys = ticks(yMin, yMax);
  const lo = Math.min(yMin, ys[0]);
  const hi = Math.max(yMax, ys[ys.length - 1]);
  const y = (v) => pad.t + (h - pad.t - pad.b) * (1 - (v - lo) / (hi - lo || 1));
  for (const v of ys) {
    root.append(svg("line", { class: "gridline", x1: pad.l, x2: w - pad.r, y1: y(v), y2: y(v) }),
      svg("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end" }, format(v)));
  }
  root.append(svg("line", { class: "axis", x1: pad.l, x2: w - pad.r, y1: h - pad.b, y2: h - pad.b }));
  if (yLabel) {
    const cy = pad.t + (h - pad.t - pad.b) / 2;
    root.append(svg("text", { x: 12, y: cy, "text-anchor": "middle", transform: `rotate(-90 12 ${cy})` }, yLabel));
  }
  return y;
}

const heightFor = (w) => Math.round(Math.min(320, Math.max(210, w * 0.45)));

function dataTable(head, rows) {
  return el("table", { class: "data" },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => (i ? el("td", {}, c) : el("th", { scope: "row" }, c)))))));
}

/** Lines over a numeric x; series: [{name, points: [[x, y], ...]}]. */
function lineChart({ id, title, series, xLabel, yLabel, caption, digits = 4, wide }) {
  const pts = series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]);
  const ysv = pts.map((p) => p[1]);
  const xMin = Math.min(...xs), xMax = Math.max(...xs);
  const yMin = Math.min(...ysv), yMax = Math.max(...ysv);
  const spread = yMax - yMin || Math.abs(yMax) * 0.1 || 1;
  const draw = (w) => {
    const h = heightFor(w), pad = { t: 10, r: 14, b: 40, l: 60 };
    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h });
    const y = yFrame(root, { w, h, pad, yMin: Math.max(0, yMin - spread * 0.15), yMax: yMax + spread * 0.15, yLabel });
    const x = (v) => pad.l + (w - pad.l - pad.r) * (xMax > xMin ? (v - xMin) / (xMax - xMin) : 0.5);
    const room = Math.max(2, Math.floor((w - pad.l - pad.r) / 40));
    const xt = xMax - xMin <= room ? [...new Set(xs)].filter(Number.isInteger) : ticks(xMin, xMax, Math.min(room, 8));
    for (const v of xt) root.append(svg("text", { x: x(v), y: h - pad.b + 16, "text-anchor": "middle" }, tickText(v)));
    root.append(svg("text", { x: (pad.l + w - pad.r) / 2, y: h - 6, "text-anchor": "middle" }, xLabel));
    series.forEach((s, i) => {
      const color = SERIES[i % SERIES.length];
      const d = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
      root.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 2.5, class: "series" }));
      for (const p of s.points) {
        root.append(svg("circle", { cx: x(p[0]), cy: y(p[1]), r: s.points.length > 40 ? 2 : 3.5, fill: color },
          svg("title", {}, `${s.name}, ${xLabel} ${p[0]}: ${fmt(p[1], digits)}`)));
      }
    });
    return root;
  };
  const xsAll = [...new Set(xs)].sort((a, b) => a - b);
  const table = dataTable([xLabel, ...series.map((s) => s.name)], xsAll.map((xv) => [String(xv),
    ...series.map((s) => fmt((s.points.find((p) => p[0] === xv) || [])[1], digits))]));
  const legend = series.map((s, i) => [s.name, SERIES[i % SERIES.length]]);
  return chartBox({ id, title, legend, caption, table, draw, wide });
}

/** Grouped vertical bars over categories; series: [{name, values}] aligned with categories. */
function barChart({ id, title, categories, series, yLabel, caption, digits = 3, share = false, wide }) {
  const vals = series.flatMap((s) => s.values).filter(Number.isFinite);
  const show = (v) => (share ? `${(v * 100).toFixed(1)}%` : fmt(v, digits));
  const draw = (w) => {
    const h = heightFor(w), pad = { t: 10, r: 10, b: 40, l: 60 };
    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h });
    const y = yFrame(root, {
      w, h, pad, yMin: 0, yMax: Math.max(...vals, 0) * 1.08 || 1, yLabel,
      format: share ? (v) => `${+(v * 100).toPrecision(3)}%` : tickText,
    });
    const band = (w - pad.l - pad.r) / Math.max(categories.length, 1);
    const bar = Math.min(40, (band * 0.8) / series.length);
    categories.forEach((c, ci) => {
      const x0 = pad.l + band * ci + (band - bar * series.length) / 2;
      series.forEach((s, si) => {
        const v = s.values[ci];
        if (!Number.isFinite(v)) return;
        root.append(svg("rect", {
          x: x0 + si * bar + 1, y: y(v), width: Math.max(bar - 2, 1), height: Math.max(y(0) - y(v), 0),
          fill: SERIES[si % SERIES.length], rx: 2, class: "bar",
        }, svg("title", {}, `${s.name}, ${c}: ${show(v)}`)));
      });
      root.append(svg("text", { x: pad.l + band * (ci + 0.5), y: h - pad.b + 16, "text-anchor": "middle" }, String(c)));
    });
    return root;
  };
  const table = dataTable(["", ...series.map((s) => s.name)],
    categories.map((c, ci) => [String(c), ...series.map((s) => show(s.values[ci]))]));
  const legend = series.map((s, i) => [s.name, SERIES[i % SERIES.length]]);
  return chartBox({ id, title, legend, caption, table, draw, wide });
}

/** Horizontal bars, one per named value in [0, 1], the value written at the bar's end. */
async function showModel() {
  if (state.modelShown) return; // drawn once; the charts redraw themselves on resize
  state.modelShown = true;
  note($("#model-note"), "Loading…");
  try {
    state.model = state.model || await api("model");
  } catch (e) {
    state.modelShown = false;
    note($("#model-note"), `Could not load the model's report: ${e.message}`, true);
    return;
  }
  note($("#model-note"), "");
  $("#model-body").replaceChildren(...modelSections(state.model));
}

/** Look a field up in GET /model, whether metrics are nested or merged with the manifest. */
function modelParts(data) {
  const metrics = data.metrics || {};
  const manifest = data.manifest || data;
  const info = manifest.info || {};
  const summary = info.metrics || {};
  const get = (k) => metrics[k] ?? summary[k] ?? data[k] ?? manifest[k] ?? info[k];
  return { metrics, manifest, info, get };
}

function modelSections(data) {
  const { metrics, get } = modelParts(data);
  const rankerName = get("ranker") || (data.ranker && data.ranker.name) || "ranker";
  const raterName = get("model") || (data.rater && data.rater.name);
  const name = raterName ? `${rankerName} lists, ${raterName} ratings` : `${rankerName} lists`;
  const out = [];

  // --- headline scores
  const tiles = [];
  const tile = (label, value, sub) => tiles.push(el("div", { class: "tile" }, el("dt", {}, label),
    el("dd", {}, value, sub ? el("small", {}, sub) : null)));
  const ranking = get("ranking");
  const popularRanking = get("ranking_popular");
  if (ranking && Number.isFinite(ranking.ndcg)) {
    const pop = popularRanking && Number.isFinite(popularRanking.ndcg) ? popularRanking.ndcg : null;
    tile(`NDCG@${ranking.k}`, fmt(ranking.ndcg), pop === null ? "list quality, 1 is perfect"
      : `list quality; the most-popular list gets ${fmt(pop)}`);
  }
  const oracle = get("oracle_ndcg");
  if (Number.isFinite(oracle)) tile("Oracle NDCG", fmt(oracle), "the best list possible on this synthetic data");
  const rmse = get("test_rmse");
  const base = get("baseline_rmse");
  if (Number.isFinite(rmse)) {
    tile("Test RMSE", fmt(rmse), Number.isFinite(base)
      ? `${rmse <= base ? "better" : "worse"} than the baseline by ${fmt(Math.abs(base - rmse))}` : null);
    tile("Test MAE", fmt(get("test_mae")));
    tile("Baseline RMSE", fmt(base), "mean + user and item biases");
  } else if (get("implicit")) {
    tile("Test RMSE", "–", "this log has no ratings, so RMSE does not apply");
  }
  const floor = get("noise_floor");
  if (Number.isFinite(floor)) tile("Noise floor", fmt(floor), "best RMSE possible on this synthetic data");
  const parts = [];
  if (get("n_test")) parts.push(`${count(get("n_test"))} held-out test ratings, scored once after training`);
  if (get("test_n_fallback")) parts.push(`${count(get("test_n_fallback"))} of them by the fallback (user or movie unseen in training)`);
  out.push(el("section", { class: "panel", "aria-labelledby": "scores-title" },
    el("h2", { id: "scores-title" }, `${name}: test scores`),
    el("dl", { class: "tiles", id: "model-scores" }, tiles),
    parts.length ? el("p", { class: "note" }, `On ${parts.join("; ")}.`) : null));

  const grid = el("div", { class: "model-grid" });
  out.push(grid);

  // --- learning curves, as the notebook plotted them: train loss and validation MSE by epoch
  const history = metrics.history || data.history || [];
  if (history.length) {
    const series = [{ name: "train loss (MSE)", points: history.filter((r) => Number.isFinite(r.train_loss)).map((r) => [r.epoch, r.train_loss]) }];
    const val = history.filter((r) => Number.isFinite(r.val_rmse)).map((r) => [r.epoch, r.val_rmse ** 2]);
    if (val.length) series.push({ name: "validation MSE", points: val });
    const last = history[history.length - 1];
    const secs = get("train_seconds");
    grid.append(lineChart({
      id: "chart-curves", wide: true, title: "Training and validation loss", series,
      xLabel: "epoch", yLabel: "mean squared error",
      caption: `${history.length} epoch${history.length > 1 ? "s" : ""}` +
        (Number.isFinite(last.val_rmse) ? `; last validation RMSE ${fmt(last.val_rmse)}` : "") +
        (Number.isFinite(secs) ? `; ${fmt(secs, 1)} s of training` : "") + ".",
    }));
  }

  // --- ranking metrics
  if (ranking && typeof ranking === "object") {
    const k = ranking.k ?? "k";
    const names = [["precision", `precision@${k}`], ["recall", `recall@${k}`], ["ndcg", `NDCG@${k}`],
      ["map", `MAP@${k}`], ["hit_rate", `hit rate@${k}`], ["coverage", "coverage"]];
    const shown = names.filter(([key_]) => Number.isFinite(ranking[key_]));
    if (shown.length) {
      const bits = [];
      if (Number.isFinite(ranking.n_users)) bits.push(`${count(ranking.n_users)} test users${ranking.sampled ? " (a random sample)" : ""}`);
      if (Number.isFinite(ranking.relevance)) bits.push(`a test rating of ${ranking.relevance} or more counts as relevant`);
      bits.push("coverage is the share of all movies recommended to anyone");
      const series = [{ name: `these lists (${rankerName}${raterName ? ` + ${raterName}` : ""})`, values: shown.map(([key_]) => ranking[key_]) }];
      if (popularRanking) series.push({ name: "most popular, for everyone", values: shown.map(([key_]) => popularRanking[key_] ?? NaN) });
      grid.append(barChart({
        id: "chart-ranking", wide: true, title: `Top-${k} lists against held-out ratings`,
        categories: shown.map(([, label]) => label), series, yLabel: "score",
        caption: `Each user's top ${k} among all the movies they did not rate in training, ordered by the ` +
          `${rankerName} ranker${raterName ? ` and the ${raterName} rating model's predictions` : ""}; ${bits.join("; ")}.`,
      }));
    }
  }

  // --- error by user activity
  const buckets = (get("error_by_activity") || []).filter((b) => Number.isFinite(b.rmse));
  if (buckets.length) {
    const series = [{ name: "RMSE", values: buckets.map((b) => b.rmse) }];
    if (buckets.some((b) => Number.isFinite(b.mae))) series.push({ name: "MAE", values: buckets.map((b) => b.mae) });
    grid.append(barChart({
      id: "chart-activity", title: "Error by user activity", categories: buckets.map((b) => b.bucket), series,
      yLabel: "test error",
      caption: "Users grouped by their number of training ratings. " +
        buckets.map((b) => `${b.bucket}: ${count(b.n_users)} users, ${count(b.n)} test ratings`).join("; ") + ".",
    }));
  }

  // --- rating distribution
  const dist = get("rating_distribution");
  if (dist && Array.isArray(dist.bins)) {
    const series = Object.entries(dist).filter(([k, v]) => k !== "bins" && Array.isArray(v)).map(([k, counts]) => {
      const total = counts.reduce((s, c) => s + c, 0) || 1;
      return { name: k === "predicted" ? "predicted (rounded)" : `${k} ratings`, values: counts.map((c) => c / total) };
    });
    if (series.length) {
      grid.append(barChart({
        id: "chart-distribution", wide: true, title: "Rating distribution", categories: dist.bins.map(String),
        series, yLabel: "share of ratings", share: true,
        caption: "Share of the test ratings at each value, and of the model's predictions for them rounded to the nearest step.",
      }));
    }
  }

  out.push(trainedOn(data));
  return out;
}

function trainedOn(data) {
  const { manifest, info, get } = modelParts(data);
  const facts = [];
  const fact = (k, v) => {
    if (v !== undefined && v !== null && v !== "") facts.push(el("dt", {}, k), el("dd", {}, String(v)));
  };
  fact("Model", get("model"));
  const mc = manifest.model_config;
  if (mc && Object.keys(mc).length) fact("Model settings", Object.entries(mc).map(([k, v]) => `${k}=${v}`).join(", "));
  fact("Dataset", get("dataset"));
  const split = get("split");
  if (split && typeof split === "object") {
    fact("Split", split.how === "given" ? `given test file ${split.test}`
      : `${split.how}, ${fmt(split.test_fraction * 100, 0)}% test, ${fmt(split.val_fraction * 100, 0)}% of the rest for validation, seed ${split.seed}`);
  }
  if (get("n_train")) fact("Ratings", `${count(get("n_train"))} train · ${count(get("n_val"))} validation · ${count(get("n_test"))} test`);
  if (manifest.n_users) fact("Users × movies", `${count(manifest.n_users)} × ${count(manifest.n_items)}`);
  const tc = get("train_config") || info.train_config;
  if (tc && typeof tc === "object") {
    fact("Training", ["optimizer", "lr", "momentum", "batch_size", "epochs", "weight_decay", "patience", "seed"]
      .filter((k) => tc[k] !== undefined && tc[k] !== null).map((k) => `${k}=${tc[k]}`).join(", "));
  }
  fact("Device", get("device"));
  if (Number.isFinite(get("train_seconds"))) fact("Training time", `${fmt(get("train_seconds"), 1)} s`);
  if (Array.isArray(manifest.rating_scale)) fact("Rating scale", manifest.rating_scale.join(" to "));
  if (Number.isFinite(manifest.global_mean)) fact("Mean training rating", fmt(manifest.global_mean));
  const v = manifest.versions;
  if (v) fact("Written by", Object.entries(v).map(([k, x]) => `${k} ${x}`).join(", "));
  return el("section", { class: "panel", "aria-labelledby": "trained-title" },
    el("h2", { id: "trained-title" }, "What was trained on what"), el("dl", { class: "facts" }, facts));
}

// ---------------------------------------------------------------- views and start-up

function route() {
  const m = location.hash.match(/^#\/(\w+)(?:\/(.+))?$/);
  const view = m && ["rate", "users", "model"].includes(m[1]) ? m[1] : "rate";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.nav === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = { rate: "Rate movies", users: "Known users", model: "Model" }[view] + " · movierec";
  if (view === "users" && m && m[2]) showUser(decodeURIComponent(m[2]));
  if (view === "model") showModel();
}

async function start() {
  const health = $("#health");
  try {
    state.health = await api("health");
    const h = state.health;
    health.textContent = `${h.model} · ${count(h.n_users)} users · ${count(h.n_items)} movies`;
  } catch (e) {
    health.textContent = `Server not reachable: ${e.message}`;
    health.classList.add("bad");
  }
  // The rating scale (for starsToScale) comes with the model's report, which the model view reuses.
  api("model").then((m) => {
    state.model = state.model || m;
    const scale = (m.manifest || m).rating_scale;
    if (Array.isArray(scale) && scale.length === 2) state.scale = scale.map(Number);
  }).catch(() => { /* no report: stars are sent as 1..5 */ });
  loadRatings();
  renderMine();
  if (state.ratings.size) requestRecs();
  search("");

  $("#search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    search($("#search").value);
  });
  $("#search").addEventListener("input", (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => search(e.target.value), SEARCH_DELAY_MS);
  });
  $("#clear-all").addEventListener("click", () => {
    if (!state.ratings.size) return;
    const keys = [...state.ratings.keys()];
    state.ratings.clear();
    state.changedAt = performance.now();
    saveRatings();
    keys.forEach(syncStars);
    renderMine();
    requestRecs();
    $("#search").focus();
  });
  $("#user-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#user-id").value.trim();
    if (!id) return;
    const hash = `#/users/${encodeURIComponent(id)}`;
    if (location.hash === hash) showUser(id);
    else location.hash = hash;
  });
  window.addEventListener("hashchange", route);
  route();
}

// Exposed for the browser test and the curious: the state, and the last measured latency.
window.movierec = { state };

start();
