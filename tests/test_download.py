"""Downloads from a local HTTP server: checked, unpacked atomically, reused; never the real network."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
import zipfile
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from movierec.data import releases
from movierec.data.download import fetch
from movierec.data.load import load
from movierec.errors import DataError

RATINGS = "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n2,1,3.5,1445714835\r\n"
MOVIES = "movieId,title,genres\r\n1,Toy Story (1995),Adventure|Animation\r\n"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over a folder; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def dead_url() -> str:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def make_zip(dest: Path) -> bytes:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-latest-small/", "")
        zf.writestr("ml-latest-small/ratings.csv", RATINGS)
        zf.writestr("ml-latest-small/movies.csv", MOVIES)
    return dest.read_bytes()


def release_for(data: bytes, **changes) -> releases.Release:
    """The ml-latest-small entry with the test zip's checksum and size in place of the pinned ones."""
    pinned = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return replace(releases.RELEASES["ml-latest-small"], **{**pinned, **changes})


def test_download_check_unpack_and_reuse(server, tmp_path):
    www, url = server
    release = release_for(make_zip(www / "ml-latest-small.zip"))
    cache = tmp_path / "cache"
    folder = fetch(release, cache, progress=False, mirror=url)
    assert folder == cache / "ml-latest-small" / "ml-latest-small"
    assert (folder / "ratings.csv").read_bytes() == RATINGS.encode()
    assert sorted(p.name for p in cache.iterdir()) == ["ml-latest-small"]  # no temp files, no zip
    # Later calls reuse the cache: they work even with nothing to download from.
    assert fetch(release, cache, progress=False, mirror=dead_url()) == folder


def test_progress_bar_goes_to_stderr(server, tmp_path, capsys):
    www, url = server
    release = release_for(make_zip(www / "ml-latest-small.zip"))
    fetch(release, tmp_path / "cache", progress=True, mirror=url)
    out, err = capsys.readouterr()
    assert out == "" and "ml-latest-small.zip" in err


def test_corrupted_download_is_rejected_and_nothing_is_kept(server, tmp_path):
    www, url = server
    good = make_zip(tmp_path / "good.zip")
    corrupt = bytearray(good)
    corrupt[len(corrupt) // 2] ^= 0xFF
    (www / "ml-latest-small.zip").write_bytes(bytes(corrupt))
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        fetch(release_for(good), cache, progress=False, mirror=url)
    msg = str(info.value)
    assert "SHA-256" in msg and hashlib.sha256(good).hexdigest() in msg and "Nothing was kept" in msg
    assert list(cache.iterdir()) == []


def test_wrong_size_is_rejected_before_downloading(server, tmp_path):
    www, url = server
    data = make_zip(www / "ml-latest-small.zip")
    with pytest.raises(DataError, match=f"is {len(data)} bytes, but ml-latest-small.zip should be 999"):
        fetch(release_for(data, size=999), tmp_path / "cache", progress=False, mirror=url)
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_fails_at_once_with_how_to_use_local_files(tmp_path):
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        fetch("ml-20m", tmp_path / "cache", progress=False, mirror=dead_url())
    assert time.monotonic() - start < 5
    msg = str(info.value)
    assert "cannot download ml-20m" in msg and "--data PATH" in msg
    assert f"put ml-20m.zip in {tmp_path / 'cache'}" in msg
    assert list((tmp_path / "cache").iterdir()) == []


def test_missing_file_on_the_server(server, tmp_path):
    _, url = server
    with pytest.raises(DataError, match="answered 404"):
        fetch("ml-100k", tmp_path / "cache", progress=False, mirror=url)


def test_a_zip_placed_in_the_cache_is_used_offline(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    release = release_for(make_zip(cache / "ml-latest-small.zip"))
    folder = fetch(release, cache, progress=False, mirror=dead_url())
    assert (folder / "movies.csv").is_file()


def test_a_bad_zip_placed_in_the_cache_is_refused(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    good = make_zip(tmp_path / "good.zip")
    (cache / "ml-latest-small.zip").write_bytes(good[:-10] + b"0123456789")
    with pytest.raises(DataError, match="SHA-256"):
        fetch(release_for(good), cache, progress=False, mirror=dead_url())
    assert sorted(p.name for p in cache.iterdir()) == ["ml-latest-small.zip"]  # the user's file, left alone


def test_published_md5_is_checked_when_there_is_no_sha256(server, tmp_path):
    www, url = server
    data = make_zip(www / "ml-latest-small.zip")
    release = release_for(data, sha256=None, md5_published=True, note="checked by MD5 only")
    (www / "ml-latest-small.zip.md5").write_text(f"MD5 (ml-latest-small.zip) = {'0' * 32}\n")
    with pytest.raises(DataError, match="has MD5"):
        fetch(release, tmp_path / "a", progress=False, mirror=url)
    (www / "ml-latest-small.zip.md5").write_text(f"{hashlib.md5(data).hexdigest()}  ml-latest-small.zip\n")
    with pytest.warns(UserWarning, match="checked by MD5 only"):
        assert fetch(release, tmp_path / "b", progress=False, mirror=url).is_dir()


def test_no_checksum_at_all_is_said_plainly(server, tmp_path):
    www, url = server
    release = release_for(make_zip(www / "ml-latest-small.zip"), sha256=None, size=None, note="cannot be pinned")
    with pytest.warns(UserWarning, match="cannot be pinned"):
        fetch(release, tmp_path / "cache", progress=False, mirror=url)


def test_load_dataset_through_mirror_and_cache_environment(server, tmp_path, monkeypatch):
    www, url = server
    monkeypatch.setitem(releases.RELEASES, "ml-latest-small", release_for(make_zip(www / "ml-latest-small.zip")))
    monkeypatch.setenv("MOVIEREC_MIRROR", url)
    monkeypatch.setenv("MOVIEREC_CACHE", str(tmp_path / "env-cache"))
    r = load(dataset="ml-latest-small")
    assert r.name == "ml-latest-small" and len(r) == 2 and r.titles.tolist() == ["Toy Story (1995)"]
    assert (tmp_path / "env-cache" / "ml-latest-small" / "ml-latest-small" / "ratings.csv").is_file()


def test_a_stray_folder_in_the_way_is_reported(server, tmp_path):
    www, url = server
    release = release_for(make_zip(www / "ml-latest-small.zip"))
    (tmp_path / "cache" / "ml-latest-small" / "junk").mkdir(parents=True)
    with pytest.raises(DataError, match="is in the way"):
        fetch(release, tmp_path / "cache", progress=False, mirror=url)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["ml-latest-small"]
