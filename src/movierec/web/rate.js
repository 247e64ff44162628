// The rate view (#/rate): search, star ratings, and recommendations folded in from them.

import { api, isAbort, listOf } from "./api.js";
import { $, el, joinAnd, K, key, note, predicted } from "./dom.js";
import { loadRatings, remember, saveRatings, state } from "./state.js";

const SEARCH_DELAY_MS = 120; // search as you type, once typing pauses

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

/** Start the view: the ratings kept from an earlier visit, their list, popular movies to rate, the controls. */
export function startRating() {
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
}
