// The model view (#/model): test scores, learning curves, list quality, errors, and what was trained on what.

import { api } from "./api.js";
import { barChart, lineChart } from "./charts.js";
import { $, count, el, fmt, note } from "./dom.js";
import { state } from "./state.js";

/** Draw the model's report once; the charts redraw themselves when their width changes. */
export async function showModel() {
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
