"""Every MovieLens layout, in the exact format GroupLens ships, as a zip, folder or single file."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pytest

from movierec.data import movielens, releases
from movierec.data.load import load
from movierec.errors import ConfigError, DataError

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ml-latest-small"

U_ITEM_TAIL = "|01-Jan-1995||http://us.imdb.com/M/title-exact?x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"


def ml100k(root: Path) -> Path:
    folder = root / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t242\t1\t878887116\n")
    titles = f"242|Kolya (1996){U_ITEM_TAIL}302|Á köldum klaka (Cold Fever) (1994){U_ITEM_TAIL}"
    (folder / "u.item").write_bytes(titles.encode("latin-1"))
    (folder / "u1.base").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    (folder / "u1.test").write_text("22\t242\t1\t878887116\n")
    return folder


def ml1m(root: Path, ratings: str = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n") -> Path:
    folder = root / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text(ratings)
    movies = "661::James and the Giant Peach (1996)::Animation\n1193::Misérables: Les (1995)::Drama\n"
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    return folder


LATEST_RATINGS = "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,11,0.5,964981247\r\n2,1,3.5,1445714835\r\n"
LATEST_MOVIES = (
    "movieId,title,genres\r\n1,Toy Story (1995),Adventure|Animation\r\n"
    '11,"American President, The (1995)",Comedy|Drama|Romance\r\n'
)


def latest_small(root: Path, ratings: str = LATEST_RATINGS) -> Path:
    folder = root / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_bytes(ratings.encode())
    (folder / "movies.csv").write_bytes(LATEST_MOVIES.encode())
    return folder


def grouplens_zip(folder: Path, dest: Path) -> Path:
    """A zip laid out as GroupLens ships it: a folder entry, then the files inside it."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(folder.name + "/", "")
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{folder.name}/{f.name}")
    return dest


def titles_of(r) -> dict:
    return dict(zip(r.index.item_ids.tolist(), r.titles.tolist(), strict=True))


def genres_of(r) -> dict:
    return dict(zip(r.index.item_ids.tolist(), r.genres.tolist(), strict=True))


# --- each layout ----------------------------------------------------------------------


def test_ml100k_folder_with_latin1_titles(tmp_path):
    r = load(ml100k(tmp_path))
    assert r.name == "ml-100k" and len(r) == 3 and r.n_users == 3
    assert titles_of(r) == {242: "Kolya (1996)", 302: "Á köldum klaka (Cold Fever) (1994)"}
    assert r.timestamp.tolist() == [881250949, 891717742, 878887116]


def test_ml100k_split_files_read_as_plain_files(tmp_path):
    folder = ml100k(tmp_path)
    train, test = load(folder / "u1.base"), load(folder / "u1.test")
    assert (train.name, len(train)) == ("u1.base", 2) and (test.name, len(test)) == ("u1.test", 1)
    assert titles_of(test) == {242: "Kolya (1996)"}


def test_ml100k_ratings_are_whole_stars(tmp_path):
    folder = ml100k(tmp_path)
    (folder / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3.5\t891717742\n")
    with pytest.raises(DataError, match=r"u.data:2: rating 3.5 is not on the scale 1..5 in whole stars"):
        load(folder)


def test_ml1m_dat_files_with_colons_in_titles(tmp_path):
    r = load(ml1m(tmp_path))
    assert r.name == "ml-1m" and len(r) == 3
    assert titles_of(r) == {661: "James and the Giant Peach (1996)", 1193: "Misérables: Les (1995)"}


def test_ml10m_unpacks_to_its_own_folder_name(tmp_path):
    folder = tmp_path / "download" / "ml-10M100K"
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("1::122::5::838985046\n1::185::4.5::838983525\n")
    (folder / "movies.dat").write_text("122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action\n")
    r = load(tmp_path / "download")  # the folder holding the release folder
    assert r.name == "ml-10m" and r.rating.tolist() == [5.0, 4.5]
    assert titles_of(r)[185] == "Net, The (1995)"


def test_latest_small_crlf_and_quoted_commas(tmp_path):
    r = load(latest_small(tmp_path))
    assert r.name == "ml-latest-small" and len(r) == 3
    assert titles_of(r) == {1: "Toy Story (1995)", 11: "American President, The (1995)"}
    assert r.rating.tolist() == [4.0, 0.5, 3.5]


def test_zip_as_shipped_reads_like_the_folder(tmp_path):
    folder = latest_small(tmp_path)
    archive = grouplens_zip(folder, tmp_path / "ml-latest-small.zip")
    a, b = load(folder), load(archive)
    assert a.name == b.name == "ml-latest-small"
    for field in ("user_idx", "item_idx", "rating", "timestamp", "titles", "genres"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_genres_from_every_layout(tmp_path):
    folder = ml100k(tmp_path)
    flags = ["0"] * 19
    flags[1] = flags[15] = "1"  # Action, Sci-Fi
    u_item = (folder / "u.item").read_bytes().decode("latin-1").splitlines()
    u_item[1] = "|".join(u_item[1].split("|")[:5] + flags)
    (folder / "u.item").write_bytes(("\n".join(u_item) + "\n").encode("latin-1"))
    assert genres_of(load(folder)) == {242: "Animation|Children's|Comedy", 302: "Action|Sci-Fi"}
    assert genres_of(load(ml1m(tmp_path))) == {661: "Animation", 1193: "Drama"}
    latest = latest_small(tmp_path, LATEST_RATINGS + "2,5,3.0,1445714836\r\n")
    (latest / "movies.csv").write_bytes((LATEST_MOVIES + "5,Untitled (2019),(no genres listed)\r\n").encode())
    r = load(latest)
    assert genres_of(r) == {1: "Adventure|Animation", 5: "", 11: "Comedy|Drama|Romance"}
    # Rows: genres by name; columns: items by index (1, 5, 11).
    np.testing.assert_array_equal(r.genre_matrix(), [[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]])


def test_malformed_genre_fields_give_no_genre(tmp_path):
    # u.item cut short before its flags; movies.dat cut to id and title, or with "::" in a title.
    folder = ml100k(tmp_path)
    (folder / "u.item").write_bytes("242|Kolya (1996)|01-Jan-1995\n302|Cold Fever (1994)\n".encode("latin-1"))
    assert genres_of(load(folder)) == {242: "", 302: ""}
    dat = ml1m(tmp_path)
    (dat / "movies.dat").write_text("661::James and the Giant Peach (1996)\n1193::Odd::Title (1995):: Drama | Crime \n")
    r = load(dat)
    assert genres_of(r) == {661: "", 1193: "Drama|Crime"}
    assert titles_of(r)[1193] == "Odd::Title (1995)"


def test_only_a_column_named_genres_is_read_as_genres(tmp_path):
    folder = latest_small(tmp_path)
    # An id-like third column would make every movie a genre of its own: it is not genres.
    (folder / "movies.csv").write_text("movieId,title,imdbId\n1,Toy Story (1995),114709\n11,Other (1995),112346\n")
    r = load(folder)
    assert set(genres_of(r).values()) == {""} and r.genre_matrix() is None
    (folder / "movies.csv").write_text("movieId,title\n1,Toy Story (1995)\n11,Other (1995)\n")
    assert set(genres_of(load(folder)).values()) == {""}
    (folder / "movies.csv").write_text("movieId,title,year,Genres\n1,Toy Story (1995),1995,Animation\n11,Other,1995\n")
    assert genres_of(load(folder)) == {1: "Animation", 11: ""}


def test_too_many_distinct_genres_are_not_a_genre_list():
    from movierec.data.ratings import MAX_GENRES, Ratings

    n = MAX_GENRES + 1
    r = Ratings.from_ids(np.arange(n), np.arange(n), np.ones(n), genres={i: f"g{i}" for i in range(n)})
    assert r.genre_matrix() is None
    r = Ratings.from_ids(np.arange(3), np.arange(3), np.ones(3), genres={0: "A|B", 2: "B"})
    np.testing.assert_array_equal(r.genre_matrix(), [[1, 0, 0], [1, 0, 1]])
    # Given by hand, genres are cleaned as the readers clean them: no "" genre, no " B " beside "B".
    r = Ratings.from_ids(np.arange(3), np.arange(3), np.ones(3), genres={0: "A|A||", 1: " B |", 2: "|"})
    np.testing.assert_array_equal(r.genre_matrix(), [[1, 0, 0], [0, 1, 0]])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("5,A," + "|".join(f"g{i}" for i in range(300)), "csv:3: a genres field of 1,389 characters"),
        ("5," + "x" * 1001 + ",Drama", "csv:3: a title of 1,001 characters"),
        ("5,A," + "|".join(f"g{i}" for i in range(30_000)), "csv:3: not a readable CSV row.*field larger"),
    ],
)
def test_a_field_too_long_for_a_movies_file_is_refused_with_its_line(tmp_path, row, message):
    # Titles and genres are fixed-width strings: one huge field would cost its length for every movie.
    folder = latest_small(tmp_path)
    (folder / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),Animation\n" + row + "\n")
    with pytest.raises(DataError, match=message) as info:
        load(folder)
    assert "movies.csv" in str(info.value)


def test_ratings_without_a_movies_file_have_no_genres(tmp_path):
    folder = latest_small(tmp_path)
    (folder / "movies.csv").unlink()
    r = load(folder)
    assert r.genres is None and r.genre_matrix() is None


def test_errors_inside_a_zip_name_the_member(tmp_path):
    bad = LATEST_RATINGS.replace("0.5", "5.5")
    archive = grouplens_zip(latest_small(tmp_path, bad), tmp_path / "ml-latest-small.zip")
    with pytest.raises(DataError) as info:
        load(archive)
    msg = str(info.value)
    assert msg.startswith(f"{archive}/ml-latest-small/ratings.csv:3: rating 5.5 is not on the scale 0.5..5 in half")
    assert "--rating-range LO,HI" in msg


def test_off_grid_and_out_of_scale_ratings(tmp_path):
    with pytest.raises(DataError, match=r"ratings.dat:2: rating 4.5 .* whole stars"):
        load(ml1m(tmp_path, "1::1193::5::978300760\n1::661::4.5::978302109\n"))
    (tmp_path / "x").mkdir()
    folder = latest_small(tmp_path / "x", LATEST_RATINGS.replace("0.5", "3.25"))
    with pytest.raises(DataError, match=r"ratings.csv:3: rating 3.25 is not on the scale"):
        load(folder)


def test_rating_range_overrides_a_release_scale(tmp_path):
    folder = ml1m(tmp_path, "1::1193::5::978300760\n1::661::4.5::978302109\n")
    assert load(folder, rating_range=(0.5, 5)).rating.tolist() == [5.0, 4.5]


def test_dat_row_with_missing_field(tmp_path):
    folder = ml1m(tmp_path, "1::1193::5::978300760\n1::661::978302109\n")
    with pytest.raises(DataError, match=r"ratings.dat:2: found 3 fields separated by '::', expected 4"):
        load(folder)


def test_wrong_csv_header(tmp_path):
    folder = latest_small(tmp_path, "user,movie,rating\n1,1,4\n")
    with pytest.raises(DataError, match=r"ratings.csv:1: expected the MovieLens header userId,movieId"):
        load(folder)


def test_undecodable_movies_csv(tmp_path):
    folder = latest_small(tmp_path)
    (folder / "movies.csv").write_bytes(b"movieId,title,genres\n1,Toy Story (1995),A\n2,Caf\xe9 (1999),B\n")
    with pytest.raises(DataError, match=r"movies.csv:3: byte b'\\xe9' is not UTF-8"):
        load(folder)


def test_a_damaged_or_cut_short_archive_is_one_clear_error(tmp_path):
    whole = grouplens_zip(latest_small(tmp_path), tmp_path / "whole.zip").read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="cut short or damaged"):
        load(cut, use_cache=False)
    flipped = bytearray(whole)
    flipped[whole.index(b"ratings.csv") + 40] ^= 0xFF  # inside the first member's deflated bytes
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match="corrupt|cut short"):
        load(bad, use_cache=False)
    gz = tmp_path / "log.csv.gz"
    rows = "".join(f"{u},2,4\n" for u in range(1, 5001))
    gz.write_bytes(gzip.compress(f"userId,movieId,rating\n{rows}".encode())[:2000])
    with pytest.raises(DataError, match="truncated or damaged"):
        load(gz, use_cache=False)


def test_a_movie_id_past_64_bits_in_movies_csv_is_named(tmp_path):
    folder = latest_small(tmp_path)
    (folder / "movies.csv").write_bytes(b"movieId,title,genres\n1,A,x\n99999999999999999999999,Big,x\n")
    with pytest.raises(DataError, match=r"movies.csv:3: movie id 99999999999999999999999 is beyond signed 64-bit"):
        load(folder)


# --- recognition ----------------------------------------------------------------------


def test_find_names_and_scales(tmp_path):
    assert movielens.find(ml100k(tmp_path)).scale == releases.WHOLE_STARS
    renamed = tmp_path / "my-copy"
    renamed.mkdir()
    (renamed / "ratings.dat").write_text("1::1::4.5::1\n")
    found = movielens.find(renamed)
    assert (found.name, found.layout, found.scale) == ("my-copy", "dat", releases.HALF_STARS)


def test_find_refuses_ambiguous_and_empty_folders(tmp_path):
    ml100k(tmp_path)
    ml1m(tmp_path)
    with pytest.raises(DataError, match="several MovieLens releases"):
        movielens.find(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no ratings file here"):
        movielens.find(tmp_path / "empty")


def test_other_files_are_not_movielens(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,rating\na,b,3\n")
    assert movielens.find(path) is None
    assert load(path).name == "ratings.csv"


def test_registry_urls_and_unknown_names():
    assert releases.RELEASES["ml-20m"].url() == "https://files.grouplens.org/datasets/movielens/ml-20m.zip"
    assert releases.RELEASES["ml-10m"].folder == "ml-10M100K"
    assert releases.RELEASES["ml-latest"].sha256 is None and releases.RELEASES["ml-latest"].note
    with pytest.raises(ConfigError, match="ml-100k, ml-1m"):
        releases.get_release("ml-2m")


# --- load(): the entry point ------------------------------------------------------------


def test_load_arguments_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="--data PATH or --dataset NAME"):
        load()
    with pytest.raises(ConfigError, match="not both"):
        load(tmp_path, dataset="ml-100k")
    with pytest.raises(ConfigError, match="columns|applies only"):
        load(ml100k(tmp_path), user_col="user")
    with pytest.raises(ConfigError, match="LO < HI"):
        load(tmp_path, rating_range=(5, 1))
    with pytest.raises(DataError, match="no such file or folder"):
        load(tmp_path / "nope.csv")


def test_load_synthetic():
    r = load(dataset="synthetic")
    assert r.name.startswith("synthetic") and len(r) > 0


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real data not present at {REAL}")
def test_real_ml_latest_small():
    r = load(REAL, use_cache=False)
    assert (len(r), r.n_users, r.n_items, r.name) == (100_836, 610, 9_724, "ml-latest-small")
    assert r.titles[r.index.item_idx([1])[0]] == "Toy Story (1995)"
    assert r.genres[r.index.item_idx([1])[0]] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert r.genre_matrix().shape == (19, 9_724)  # the README's 18 genres and IMAX
    assert r.rating_scale() == (0.5, 5.0)


# --- a movies file or a ratings log that would mislead -------------------------------------


def test_one_item_id_that_is_not_a_number_costs_its_own_title_alone(tmp_path):
    folder = latest_small(tmp_path, LATEST_RATINGS + "2,12O,4.0,1445714836\r\n")
    r = load(folder)
    assert r.index.item_ids.dtype.kind == "U"  # one name makes every id a name
    assert titles_of(r) == {"1": "Toy Story (1995)", "11": "American President, The (1995)", "12O": ""}
    assert genres_of(r)["1"] == "Adventure|Animation"


def test_escape_sequences_in_titles_never_reach_the_terminal(tmp_path):
    folder = latest_small(tmp_path)
    evil = 'movieId,title,genres\n1,"\x1b]0;owned\x07\x1b[2JToy\x00 Story\x9b31m (1995)",Anim\x1b[5mation\n'
    (folder / "movies.csv").write_text(evil)
    r = load(folder)
    assert titles_of(r)[1] == "Toy Story (1995)" and genres_of(r)[1] == "Animation"


def test_an_unclosed_quote_is_refused_where_it_opens(tmp_path):
    folder = latest_small(tmp_path)
    rows = 'movieId,title,genres\n1,"Toy Story (1995),Animation\n11,Heat (1995),Action\n12,Up (2009),Drama\n'
    (folder / "movies.csv").write_text(rows)
    with pytest.raises(DataError, match=r"movies.csv:2: a field runs from line 2 to line 4.*not closed"):
        load(folder)


def test_a_movie_listed_twice_is_refused_with_both_lines(tmp_path):
    folder = latest_small(tmp_path)
    (folder / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),A\n11,Heat,B\n1,Other,C\n")
    with pytest.raises(DataError, match=r"movies.csv:4: movie id 1 is listed twice, on lines 2 and 4"):
        load(folder)


def test_a_genres_column_of_hundreds_of_values_is_refused_not_dropped(tmp_path):
    folder = latest_small(tmp_path)
    rows = "".join(f"{k},Film {k},tag{k}\n" for k in range(1, 600))
    (folder / "movies.csv").write_text("movieId,title,genres\n" + rows)
    with pytest.raises(DataError, match="599 distinct genres .*at most 500"):
        load(folder)


@pytest.mark.parametrize("bad", ["1\x00", "\x1b[2J1"])
def test_a_control_character_in_an_id_is_refused_with_its_line(tmp_path, bad):
    folder = latest_small(tmp_path, LATEST_RATINGS + f"2,{bad},4.0,1445714836\r\n")
    with pytest.raises(DataError, match=r"ratings.csv:5: item id .* holds a control character"):
        load(folder)


def test_a_declared_scale_is_kept_whatever_the_log_holds(tmp_path):
    path = tmp_path / "tens.csv"
    path.write_text("user,item,rating\n" + "".join(f"{u},{i},{1 + (u + i) % 9}\n" for u in range(5) for i in range(6)))
    r = load(path, rating_range=(1, 10))
    assert float(r.rating.max()) == 9.0 and r.rating_scale() == (1.0, 10.0)  # no 10 given, still out of 10
    fours = tmp_path / "fours.csv"
    fours.write_text("user,item,rating\n1,1,1\n1,2,4\n2,1,2\n")
    assert load(fours).rating_scale() == (1.0, 4.0)  # undeclared: the ratings present stand for it
    for lo, hi in ((float("-inf"), float("inf")), (0.5, 1e308), (float("nan"), 5.0)):
        with pytest.raises(ConfigError, match="--rating-range must be"):
            load(path, rating_range=(lo, hi))
    release = load(latest_small(tmp_path))
    assert release.rating_scale() == (0.5, 5.0) and release.rating_floor() == 0.0  # r / 5, as on MovieLens


def test_a_model_of_a_declared_scale_takes_its_top_rating_with_none_given(tmp_path):
    from movierec import fitting, persist, pipeline

    path = tmp_path / "tens.csv"
    path.write_text(
        "user,item,rating\n" + "".join(f"{u},{i},{1 + (u * i) % 9}\n" for u in range(30) for i in range(12))
    )
    parts = pipeline.split(load(path, rating_range=(1, 10)))
    rec, _ = fitting.fit(parts.fit, parts.val, "baseline", ranker="popular")
    loaded = persist.load(persist.save(rec, tmp_path / "m"))
    assert loaded.scale == (1.0, 10.0)  # was 1..9, the ratings present, and a rating of 10 was refused
    assert loaded.recommend_new_user([(3, 10.0), (4, 1.0)], 3).items
