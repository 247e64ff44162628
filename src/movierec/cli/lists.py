"""Commands that show lists: recommend (known users, new users, every user to a file) and similar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from movierec import outdir
from movierec.cli.common import JsonOpt, app, check_k, err, out
from movierec.errors import ConfigError
from movierec.recommend.lists import MAX_K


@app.command()
def recommend(
    model_dir: Annotated[Path, typer.Option("--model", help="A model directory written by `movierec train`.")],
    user: Annotated[
        list[str] | None, typer.Option("--user", help="A user's raw id, as in the ratings file; repeat for several.")
    ] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Every user the model knows (needs --out).")] = False,
    rate: Annotated[
        list[str] | None,
        typer.Option("--rate", metavar="ITEM=RATING", help="A new user's rating; repeat. Folded in, no retraining."),
    ] = None,
    k: Annotated[int, typer.Option("-k", help=f"How many items (at most {MAX_K}).")] = 10,
    include_rated: Annotated[bool, typer.Option(help="Also list items the user rated in training.")] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the lists to this .csv or .parquet file instead.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print top-k lists with titles, each item with the rating the user would likely give; or write them to a file.

    The ranker orders each list, the rating model says each item's rating. Each list says
    which path made it: model (a known user), fold-in (a new user given by --rate), or
    popular (a user with no ratings: the same list for everyone).
    """
    from movierec import persist
    from movierec.recommend import write_recommendations
    from movierec.recommend.fold_in import rated_twice

    check_k(k)
    asked = sum([bool(user), all_users, bool(rate)])
    if asked == 0:
        raise ConfigError("name whom to recommend for: --user ID (repeatable), --all-users, or --rate ITEM=RATING")
    if asked > 1:
        raise ConfigError(
            "--user, --all-users and --rate each name whom to recommend for: give one of them, not several"
        )
    if all_users and out_file is None:
        raise ConfigError("--all-users writes a file: add --out recs.csv or --out recs.parquet")
    if rate and out_file is not None:
        raise ConfigError("--out is for --user/--all-users; a new user's list prints (add --json for JSON)")
    pairs = [_parse_rating(r) for r in rate or []]
    twice = sorted(str(i) for i in rated_twice(item for item, _ in pairs))
    if twice:
        raise ConfigError(f"--rate gives item(s) {', '.join(twice)} more than one rating; rate each item once")
    if out_file is not None:
        if out_file.suffix.lower() not in (".csv", ".parquet"):
            raise ConfigError(f"--out {out_file}: write recommendations to a .csv or .parquet file")
        outdir.check_writable(out_file)  # before the model loads and every user is scored
        with outdir.lock(out_file):
            n = write_recommendations(
                persist.load(model_dir), out_file, None if all_users else user, k=k, exclude_seen=not include_rated
            )
        if as_json:
            print(json.dumps({"out": str(out_file), "rows": n}))
        else:
            err.print(f"wrote {n:,} recommendations to {out_file}", highlight=False)
        return
    recommender = persist.load(model_dir)
    if rate:
        result = recommender.recommend_new_user(pairs, k)
        if result.ignored:
            raise ConfigError(
                f"unknown item id(s) in --rate: {', '.join(map(str, result.ignored))}; the model was not trained "
                "with them (find ids in the data's movies file, or by title through `movierec serve`: "
                "GET /items/search?q=...)"
            )
        lists: list[tuple[object, list[dict], str]] = [("new user", result.items, result.source)]
        if as_json:
            print(json.dumps({"items": result.items, "source": result.source}))
            return
    else:
        lists = []
        for u in user or []:
            rows = recommender.recommend(u, k, exclude_seen=not include_rated)
            lists.append((recommender.user_id(recommender.user_index(u)), rows, rows[0]["source"] if rows else "model"))
        if as_json:
            body = [{"user_id": u, "items": rows, "source": src} for u, rows, src in lists]
            print(json.dumps(body[0] if len(body) == 1 else {"users": body}))
            return
    for who, rows, source in lists:
        title = who if who == "new user" else f"user {who}"
        models_used = f"{recommender.ranker_name} lists, {recommender.rater_name or 'no'} ratings"
        table = Table(title=f"top {k} for {title} ({source}: {models_used})")
        table.add_column("#", justify="right")
        table.add_column("item", justify="right")
        table.add_column("title")
        table.add_column("predicted", justify="right")
        table.add_column("because you liked")
        for rank, row in enumerate(rows, 1):
            rating = "-" if row["rating"] is None else f"{row['rating']:.2f}"
            because = ", ".join(map(str, row.get("because", [])))
            table.add_row(str(rank), str(row["item_id"]), row["title"] or "", rating, because)
        out.print(table)


def _parse_rating(text: str) -> tuple[str, float]:
    item, sep, value = text.rpartition("=")
    try:
        if not sep or not item:
            raise ValueError
        return item, float(value)
    except ValueError:
        raise ConfigError(f"--rate takes ITEM=RATING (for example 318=4.5), got {text!r}") from None


@app.command()
def similar(
    model_dir: Annotated[Path, typer.Option("--model", help="A model directory written by `movierec train`.")],
    item: Annotated[str, typer.Option("--item", help="The item's raw id, as in the ratings file.")],
    k: Annotated[int, typer.Option("-k", help="How many items.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Print the items most like one item: cosine of the model's item vectors, or of their raters."""
    from movierec import persist

    check_k(k)
    recommender = persist.load(model_dir)
    rows = recommender.similar_items(item, k)
    if as_json:
        print(json.dumps({"item_id": item, "items": rows, "source": recommender.similarity_source}))
        return
    i = recommender.item_index(item)
    name = recommender.titles[i] if recommender.titles is not None else item
    table = Table(title=f"like {name} ({recommender.similarity_source})")
    table.add_column("#", justify="right")
    table.add_column("item", justify="right")
    table.add_column("title")
    table.add_column("similarity", justify="right")
    for rank, row in enumerate(rows, 1):
        table.add_row(str(rank), str(row["item_id"]), row["title"] or "", f"{row['score']:.3f}")
    out.print(table)
