// What the page remembers: the visitor's ratings (kept in localStorage per model), the
// titles seen in answers, the requests in flight.

import { key } from "./dom.js";

export const state = {
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

export function saveRatings() {
  try {
    localStorage.setItem(storageKey(), JSON.stringify([...state.ratings.values()]));
  } catch { /* private mode or full: ratings just do not survive a reload */ }
}

export function loadRatings() {
  try {
    for (const r of JSON.parse(localStorage.getItem(storageKey()) || "[]")) {
      state.ratings.set(key(r.item_id), r);
      state.titles.set(key(r.item_id), r.title);
    }
  } catch { /* a corrupt entry: start afresh */ }
}

export function remember(items) {
  for (const it of items) if (it.title) state.titles.set(key(it.item_id), it.title);
}
