"""Commands that show lists: recommend (known users, new users, every user to a file) and similar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from movierec.cli.common import MAX_K, JsonOpt, app, check_k, err, out
from movierec.errors import ConfigError

if TYPE_CHECKING:
    from movierec.recommend import Recommender


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
    from movierec import bodies, persist
    from movierec.cli.display import Display
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
    display = Display(quiet=as_json)
    with display, display.phase(f"loading the model in {model_dir}"):
        recommender = persist.load(model_dir)
    if out_file is not None:
        with Display(quiet=as_json) as display, display.phase(f"top {k} for each user, to {out_file}") as phase:
            n = write_recommendations(
                recommender, out_file, None if all_users else user, k=k, exclude_seen=not include_rated, phase=phase
            )
        if as_json:
            print(json.dumps({"out": str(out_file), "rows": n}))
        else:
            err.print(f"wrote {n:,} recommendations to {out_file}", highlight=False)
        return
    lists: list[tuple[str, dict]] = []  # (whom, JSON body)
    if rate:
        found = recommender.recommend_new_user(pairs, k)
        if found.ignored:
            raise ConfigError(
                f"unknown item id(s) in --rate: {', '.join(map(str, found.ignored))}; the model was not trained "
                f"with them (find ids by title: movierec search --model {model_dir} TITLE)"
            )
        lists.append(("new user", bodies.user_list(found)))
    else:
        for u in user or []:
            found = recommender.recommend(u, k, exclude_seen=not include_rated)
            who = recommender.user_id(recommender.user_index(u))
            lists.append((f"user {who}", bodies.known_user_list(who, found)))
    if as_json:
        body = [listed for _, listed in lists]
        print(json.dumps(body[0] if len(body) == 1 else {"users": body}))
        return
    models_used = f"{recommender.ranker_name} lists, {recommender.rater_name or 'no'} ratings"
    for who, listed in lists:
        table = _table(f"top {k} for {who} ({listed['source']}: {models_used})", "predicted", "because you liked")
        for rank, row in enumerate(listed["items"], 1):
            rating = "-" if row["rating"] is None else f"{row['rating']:.2f}"
            because = _named(recommender, row["because"])
            table.add_row(str(rank), str(row["item_id"]), row["title"] or "", rating, because)
        out.print(table)


def _named(recommender: Recommender, item_ids: list) -> str:
    """Rated items by title where the model has titles, else by id; "; " apart, as titles hold commas."""
    if recommender.titles is None:
        return ", ".join(map(str, item_ids))
    return "; ".join(recommender.catalogue.title(recommender.item_index(i)) or str(i) for i in item_ids)


def _ids_by_title(recommender: Recommender, text: str, model_dir: Path) -> str:
    found = [] if recommender.titles is None else recommender.catalogue.search(text, 3)
    if not found:
        return f"find ids by title: movierec search --model {model_dir} TITLE"
    return "by title it may be " + ", ".join(f"{row['item_id']} ({row['title']})" for row in found)


def _table(title: str, *columns: str) -> Table:
    """A list's table: rank, item id, title, then ``columns``."""
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("item", justify="right")
    table.add_column("title")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i else "right")
    return table


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
    from movierec import bodies, persist
    from movierec.recommend import UnknownIdError

    check_k(k)
    recommender = persist.load(model_dir)
    try:
        found = recommender.similar_items(item, k)
    except UnknownIdError as exc:  # often a title given for an id: name the ids it may mean
        raise ConfigError(f"{exc}; {_ids_by_title(recommender, item, model_dir)}") from None
    i = recommender.item_index(item)
    listed = bodies.similar_list(recommender.item_id(i), found)
    if as_json:
        print(json.dumps(listed))
        return
    name = recommender.titles[i] if recommender.titles is not None else item
    table = _table(f"like {name} ({found.source})", "similarity")
    for rank, row in enumerate(listed["items"], 1):
        table.add_row(str(rank), str(row["item_id"]), row["title"] or "", f"{row['score']:.3f}")
    out.print(table)


@app.command()
def search(
    query: Annotated[str, typer.Argument(metavar="TITLE", help="Words of the title, in any case: 'the matrix'.")],
    model_dir: Annotated[Path, typer.Option("--model", help="A model directory written by `movierec train`.")],
    k: Annotated[int, typer.Option("-k", help="How many items at most.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Find items' ids by title among the items a model knows, best matches first, the most rated first among equals.

    The same search as the web page's and ``GET /items/search``: the whole title (with or
    without its year, "Matrix, The" read as "The Matrix"), then titles starting with the
    words, then the words anywhere. The ids found are the ones --item and --rate take.
    Exit code 1 when no title matches (with --json: an empty list, exit code 0).
    """
    from movierec import persist

    check_k(k)
    if not query.strip():
        raise ConfigError("search needs words of a title, for example: movierec search --model runs/latest 'toy story'")
    recommender = persist.load(model_dir)
    if recommender.titles is None:
        raise ConfigError(
            f"{model_dir}: this model was trained on ratings without titles (no movies file beside them), "
            "so there is nothing to search; give ids as they appear in the ratings file"
        )
    rows = recommender.catalogue.search(query, k)
    if as_json:
        print(json.dumps({"query": query, "items": rows}))
        return
    if not rows:
        err.print(f"no title contains {query!r}", highlight=False)
        raise typer.Exit(1)
    table = Table(title=f"titles matching {query!r}")
    table.add_column("item", justify="right")
    table.add_column("title")
    table.add_column("ratings", justify="right")
    for row in rows:
        table.add_row(str(row["item_id"]), row["title"] or "", f"{row['n_ratings']:,}")
    out.print(table)
