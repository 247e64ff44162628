// movierec's page: plain DOM over the HTTP API of `movierec serve`, no framework, no build step;
// ES modules, one per view (rate.js, users.js, model.js), loaded by the browser as they are.
// Three views picked by the URL hash: #/rate (fold-in recommendations for you), #/users/ID
// (a known user) and #/model (how the model did).

import { api } from "./api.js";
import { $, count } from "./dom.js";
import { showModel } from "./model.js";
import { startRating } from "./rate.js";
import { state } from "./state.js";
import { showUser, startUsers } from "./users.js";

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
  startRating(); // after /health: the kept ratings are filed under the model it names
  startUsers();
  window.addEventListener("hashchange", route);
  route();
}

// Exposed for the browser test and the curious: the state, and the last measured latency.
window.movierec = { state };

start();
