"""compare: several models on one split, each scored at its own job."""

from __future__ import annotations

import json

import numpy as np
from helpers import run_cli

from movierec import pipeline
from movierec.compare import compare


def test_raters_get_rmse_rankers_do_not_and_ranked_lists_beat_rated_ones(small):
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))
    rows = {r["model"]: r for r in compare(parts, ["baseline", "ease", "popular"])}
    assert rows["baseline"]["kind"] == "rater" and 0.3 < rows["baseline"]["rmse"] < 1.2
    assert rows["ease"]["rmse"] is None and rows["popular"]["mae"] is None
    # Listing by predicted rating favours items with few glowing ratings: a ranker does much better.
    assert rows["ease"]["ndcg"] > rows["popular"]["ndcg"] > rows["baseline"]["ndcg"]
    assert all(r["seconds"] >= 0 for r in rows.values())


def test_compare_command_prints_a_table_and_json(monkeypatch, capsys):
    args = ["compare", "--models", "baseline,popular", "--synthetic", "300x200x6000"]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--json")
    assert code == 0, err
    body = json.loads(out)
    assert [m["model"] for m in body["models"]] == ["baseline", "popular"]
    code, out, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and "NDCG@10" in out and "baseline" in out
    code, _, err = run_cli(monkeypatch, capsys, "compare", "--models", "baseline,nope", "--synthetic", "300x200x6000")
    assert code == 2 and "unknown model 'nope'" in err
    for names in ("", ","):
        code, _, err = run_cli(monkeypatch, capsys, "compare", "--models", names, "--synthetic", "300x200x6000")
        assert code == 2 and "names no model" in err and "Traceback" not in err


def test_a_rankers_row_keeps_the_list_settings_train_chose():
    # The popular ranker's scores grow slowly with an item's count: a popularity discount on
    # top of them (ListConfig's default) turns the most-popular list upside down, so train
    # chooses none, and compare must keep that choice.
    from movierec import fitting, references
    from movierec.data.synthetic import SyntheticConfig, generate
    from movierec.evaluation import evaluate_ranking, relevance_of

    parts = pipeline.split(generate(SyntheticConfig(n_users=1000, n_items=800, n_ratings=80_000)).ratings)
    (row,) = compare(parts, ["popular"])
    rec, _ = fitting.fit(parts.fit, parts.val, "baseline", ranker="popular")
    most_popular = evaluate_ranking(references.popular_of(rec), parts.test, relevance=relevance_of(parts.fit))
    assert row["ndcg"] > 0.9 * most_popular["ndcg"]


def test_a_rater_with_sitting_shifts_reports_its_figure_alone_too(monkeypatch, capsys, tmp_path):
    from test_sittings import moody_log

    log, _ = moody_log(n_users=80)
    parts = pipeline.split(log, pipeline.SplitConfig(seed=0))
    rows = {r["model"]: r for r in compare(parts, ["baseline", "popular"])}
    # The moods are strong, so the shifts cut the error, and the figure without them is larger.
    assert rows["baseline"]["rmse_without_sittings"] > rows["baseline"]["rmse"]
    assert rows["popular"]["rmse_without_sittings"] is None
    # As a file: one rating per (user, item), the first (the log's sittings may repeat an item).
    _, first = np.unique(log.user_idx.astype(np.int64) * log.n_items + log.item_idx, return_index=True)
    path = tmp_path / "moody.csv"
    path.write_text(
        "userId,movieId,rating,timestamp\n"
        + "".join(
            f"{log.index.user_ids[log.user_idx[k]]},{log.index.item_ids[log.item_idx[k]]},"
            f"{log.rating[k]:.2f},{log.timestamp[k]}\n"
            for k in np.sort(first)
        )
    )
    code, out, err = run_cli(monkeypatch, capsys, "compare", "--models", "baseline,popular", "--data", path)
    assert code == 0, err
    assert "RMSE alone" in out and "sitting's shift" in out
    code, out, err = run_cli(monkeypatch, capsys, "compare", "--models", "baseline", "--synthetic", "300x200x6000")
    assert code == 0 and "RMSE alone" not in out  # no times in sittings: nothing to tell apart
