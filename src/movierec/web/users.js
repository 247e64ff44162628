// The known-user view (#/users/ID): a user's training ratings, their list, and similar movies.

import { api, isAbort, listOf } from "./api.js";
import { $, count, el, fmt, joinAnd, K, key, note, predicted } from "./dom.js";
import { remember, state } from "./state.js";

export async function showUser(userId) {
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

/** Start the view's form: a user id opens #/users/ID, which the router shows. */
export function startUsers() {
  $("#user-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#user-id").value.trim();
    if (!id) return;
    const hash = `#/users/${encodeURIComponent(id)}`;
    if (location.hash === hash) showUser(id);
    else location.hash = hash;
  });
}
