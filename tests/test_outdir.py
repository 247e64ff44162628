"""Where commands write: no link followed, nothing of anyone else's touched, one run per output, odd places refused.

Links are real symbolic links; a read-only filesystem is a real read-only tmpfs mount
where this machine lets the tests mount one (root), else the OS's answer is planted.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading

import pytest
from helpers import run_cli

from movierec import locks, outdir
from movierec.errors import ConfigError

TP = ["train", "--model", "baseline", "--ranker", "popular", "--synthetic", "300x200x5000"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    mp = pytest.MonkeyPatch()
    code, _, err = run_cli(mp, _Capture(), *TP, "--out", str(out), "--json")
    mp.undo()
    assert code == 0, err
    return out


class _Capture:
    """A stand-in for capsys in a module fixture (the CLI's output is not needed there)."""

    def readouterr(self):  # noqa: ANN201
        return type("Captured", (), {"out": "", "err": ""})()


def _tree(folder) -> dict:
    return {
        str(p.relative_to(folder)): (os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


# --- the lock ---------------------------------------------------------------------------------


def test_a_lock_path_that_is_a_link_is_refused_and_its_target_kept(tmp_path, monkeypatch, capsys):
    precious = tmp_path / "v.txt"
    precious.write_text("precious")
    (tmp_path / ".m.lock").symlink_to(precious)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, *TP, "--out", "m")
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (
        "error: .m.lock is a symbolic link, not a lock movierec made; movierec locks --out m with that name. "
        "Move it away, or choose another --out"
    )
    assert precious.read_text() == "precious" and (tmp_path / ".m.lock").is_symlink()
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("content", [b"mine", b"", b"pid 12\n", b"movierec lock: pid 1 on h\nmore"])
def test_a_users_own_file_at_the_lock_path_is_left_alone(tmp_path, monkeypatch, capsys, content):
    mine = tmp_path / ".m.lock"
    mine.write_bytes(content)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, *TP, "--out", "m")
    assert code == 2 and ".m.lock is a file that is not a lock movierec made" in err
    assert mine.read_bytes() == content and not (tmp_path / "m").exists()


def test_a_folder_at_the_lock_path_is_refused(tmp_path):
    (tmp_path / ".m.lock").mkdir()
    with (
        pytest.raises(ConfigError, match=r"\.m\.lock is a folder that is not a lock movierec made"),
        locks.lock(tmp_path / "m"),
    ):
        pass
    assert (tmp_path / ".m.lock").is_dir()


def test_a_hard_link_at_the_lock_path_is_refused(tmp_path):
    other = tmp_path / "other"
    other.write_bytes(b"movierec lock: pid 1 on h\n")  # even one that reads as a lock: two names, not ours
    os.link(other, tmp_path / ".m.lock")
    with pytest.raises(ConfigError, match="not a lock movierec made"), locks.lock(tmp_path / "m"):
        pass
    assert other.read_bytes() == b"movierec lock: pid 1 on h\n"


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    code = "from movierec import locks; import pathlib, os\nwith locks.lock(pathlib.Path('m')): os._exit(9)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ}, check=False)
    assert result.returncode == 9 and (tmp_path / ".m.lock").read_bytes().startswith(b"movierec lock: pid ")
    with locks.lock(tmp_path / "m"):
        assert (tmp_path / ".m.lock").read_bytes().startswith(f"movierec lock: pid {os.getpid()} ".encode())
    assert not (tmp_path / ".m.lock").exists() and not list(tmp_path.iterdir())


def test_a_held_lock_names_its_holder_and_is_released_whole(tmp_path):
    holder = rf"another movierec run \(pid {os.getpid()}\) is writing --out"
    with locks.lock(tmp_path / "m"), pytest.raises(ConfigError, match=holder), locks.lock(tmp_path / "m"):
        pass
    assert not list(tmp_path.iterdir())


def test_a_lock_replaced_while_held_is_not_removed(tmp_path):
    with locks.lock(tmp_path / "m"):
        (tmp_path / ".m.lock").unlink()
        (tmp_path / ".m.lock").write_text("someone's")
    assert (tmp_path / ".m.lock").read_text() == "someone's"


# --- one run per output file -------------------------------------------------------------------


def test_two_recommend_runs_onto_one_file_are_kept_apart(model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "recs.csv"
    with locks.lock(out):  # another run holds it
        code, _, err = run_cli(
            monkeypatch, capsys, "recommend", "--model", str(model), "--all-users", "--out", str(out)
        )
    assert code == 2 and "another movierec run (pid" in err and not out.exists()
    code, _, _ = run_cli(monkeypatch, capsys, "recommend", "--model", str(model), "--all-users", "--out", str(out))
    assert code == 0 and out.read_text().startswith('"user_id","rank","item_id"')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recs.csv"]


def test_two_tune_runs_onto_one_file_are_kept_apart(tmp_path, monkeypatch, capsys):
    out = tmp_path / "best.json"
    args = ["tune", "--model", "baseline", "--synthetic", "300x200x5000", "--trials", "1", "--out", str(out)]
    with locks.lock(out):
        code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "another movierec run (pid" in err and "trial" not in err and not out.exists()


def test_a_link_planted_at_a_temporary_name_is_never_written_through(tmp_path, monkeypatch):
    # Every temporary file lives in a fresh private folder: a guessed name outside it is not used.
    victim = tmp_path / "victim"
    victim.write_text("keep")
    for name in (".best.json.tmp", "best.json.tmp", ".best.json.lock"):
        (tmp_path / name).symlink_to(victim)
    with outdir.atomic_file(tmp_path / "best.json") as tmp:
        assert os.stat(tmp.parent).st_mode & 0o077 == 0  # only this user may enter
        tmp.write_text("{}")
    assert victim.read_text() == "keep" and (tmp_path / "best.json").read_text() == "{}"


# --- which model folder may be replaced -------------------------------------------------------


def test_a_model_folder_is_replaced_only_with_the_files_its_manifest_records(model, tmp_path, monkeypatch, capsys):
    planted = tmp_path / "m"
    planted.mkdir()
    (planted / "manifest.json").write_text(json.dumps({"format": "movierec-model"}))
    (planted / "metrics.json").write_text("my own results")
    before = _tree(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, *TP, "--out", str(planted))
    assert code == 2 and "is not the file its manifest records" in err
    assert _tree(tmp_path) == before
    # movierec's own folder, unchanged, is replaced; once a file in it changed, it is not.
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(model), str(copy)], check=True)
    outdir.check_replaceable(copy)
    (copy / "metrics.json").write_text("edited by hand")
    with pytest.raises(ConfigError, match="metrics.json is not the file its manifest records"):
        outdir.check_replaceable(copy)


def test_a_folder_of_model_names_with_a_copied_manifest_is_refused(model, tmp_path):
    # A manifest movierec wrote does not vouch for other files under the same names.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "manifest.json").write_bytes((model / "manifest.json").read_bytes())
    (fake / "model.safetensors").write_text("someone's weights")
    with pytest.raises(ConfigError, match="model.safetensors is not the file"):
        outdir.check_replaceable(fake)


def test_a_checkpoint_folder_that_is_a_link_is_refused(tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "m.partial").symlink_to(elsewhere)
    code, _, err = run_cli(monkeypatch, capsys, *TP, "--out", str(tmp_path / "m"))
    assert code == 2 and "checkpoint folder) is a symbolic link" in err
    assert not list(elsewhere.iterdir()) and not (tmp_path / "m").exists()


# --- odd places for --out ----------------------------------------------------------------------


@pytest.fixture
def read_only(tmp_path):
    """A folder on a read-only filesystem: a real tmpfs mount where allowed, else the OS's answer planted."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True, check=False
        ).returncode
        == 0
    )
    if mounted:
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
        return
    mp = pytest.MonkeyPatch()
    real = outdir.tempfile.mkdtemp

    def refused(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if os.fspath(kwargs.get("dir", "")).startswith(str(folder)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(folder))
        return real(*args, **kwargs)

    mp.setattr(outdir.tempfile, "mkdtemp", refused)
    yield folder
    mp.undo()


LONG = "a" * 250


@pytest.mark.parametrize(
    ("command", "where", "says"),
    [
        ("recommend", "file/recs.csv", "is a file, not a folder"),
        ("recommend", "/proc/recs.csv", "cannot write in /proc (the filesystem there takes no new files)"),
        ("recommend", "ro/recs.csv", "(the filesystem is read-only)"),
        ("recommend", f"{LONG}.csv", "bytes long; movierec keeps files named after it beside it"),
        ("recommend", "loop/recs.csv", "(a loop of symbolic links)"),
        ("tune", "ro/best.json", "(the filesystem is read-only)"),
        ("tune", "file/deeper/best.json", "is a file, not a folder"),
        ("tune", f"{LONG}.json", "bytes long"),
        ("train", "ro/m", "(the filesystem is read-only)"),
        ("train", "file/m", "is a file, not a folder"),
        ("train", LONG, "bytes long"),
    ],
)
def test_an_out_that_cannot_be_written_is_one_line_before_any_work(
    model, read_only, tmp_path, monkeypatch, capsys, command, where, says
):
    (tmp_path / "file").write_text("keep")
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    args = {
        "recommend": ["recommend", "--model", str(model), "--all-users"],
        "tune": ["tune", "--model", "baseline", "--synthetic", "300x200x5000", "--trials", "2"],
        "train": TP,
    }[command]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", where)
    assert code == 2 and says in err and "Traceback" not in err and "trial" not in err + out
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: --out ")
    assert _tree(tmp_path) == before


def test_os_errors_are_worded_by_their_cause(tmp_path, monkeypatch, capsys):
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    code, _, err = run_cli(monkeypatch, capsys, *TP[:5], "--data", str(tmp_path / "loop"), "--out", str(tmp_path / "m"))
    assert (
        code == 2
        and err.strip() == f"error: {tmp_path / 'loop'}: cannot open it (a loop of symbolic links); check the path"
    )


def test_writes_from_several_threads_each_land_whole(tmp_path):
    def write(i: int) -> None:
        with outdir.atomic_file(tmp_path / "out.txt") as tmp:
            tmp.write_text(str(i) * 1000)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = (tmp_path / "out.txt").read_text()
    assert len(set(text)) == 1 and len(text) == 1000 and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


# --- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--ranker", "bogus"], "unknown ranker 'bogus'; --ranker takes one of: auto, ease, ials, popular"),
        (["--ranker", "EASE"], "unknown ranker 'EASE' (names are lower case: ease); --ranker takes one of: auto,"),
        (["--ranker", ""], "unknown ranker '' (an empty name); --ranker takes one of: auto, ease"),
        (["--model", "bogus"], "unknown rating model 'bogus'; --model takes one of: baseline, mlp"),
    ],
)
def test_an_unknown_name_lists_the_names_that_flag_takes(tmp_path, monkeypatch, capsys, flags, says):
    code, _, err = run_cli(
        monkeypatch, capsys, "train", *flags, "--synthetic", "300x200x5000", "--out", str(tmp_path / "m")
    )
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1
    assert "unknown model" not in err and not (tmp_path / "m").exists()


def test_a_rating_for_a_model_without_a_scale_says_so(tmp_path, monkeypatch, capsys):
    plays = tmp_path / "plays.csv"
    plays.write_text("user,item\n" + "".join(f"{u},{i}\n" for u in range(1, 30) for i in range(1, 20) if (u + i) % 3))
    out = tmp_path / "m"
    code, _, err = run_cli(monkeypatch, capsys, "train", "--data", str(plays), "--out", str(out), "--json")
    assert code == 0, err
    code, _, err = run_cli(monkeypatch, capsys, "recommend", "--model", str(out), "--rate", "1=5")
    assert code == 2 and "trained on a log without ratings (plays, clicks), so it has no rating scale" in err
    assert "ITEM=1" in err and "1..1" not in err
    code, stdout, _ = run_cli(monkeypatch, capsys, "recommend", "--model", str(out), "--rate", "1=1", "--json")
    assert code == 0 and json.loads(stdout)["source"] == "fold-in"


@pytest.mark.parametrize("given", ["7", "7.0", "7.", "+7", "007.00"])
def test_a_user_id_is_read_as_the_ratings_reader_reads_it(model, monkeypatch, capsys, given):
    code, stdout, err = run_cli(monkeypatch, capsys, "recommend", "--model", str(model), "--user", given, "--json")
    assert code == 0, err
    assert json.loads(stdout)["user_id"] == 7


@pytest.mark.parametrize("given", ["7.5", " 7", "7e0", "seven", "1e400"])
def test_what_the_reader_would_not_take_as_a_whole_number_is_no_id(model, monkeypatch, capsys, given):
    code, _, err = run_cli(monkeypatch, capsys, "recommend", "--model", str(model), "--user", given)
    assert code == 2 and "unknown user id" in err


@pytest.mark.parametrize("command", ["train", "tune", "recommend"])
def test_an_out_that_is_a_link_is_refused_and_its_target_kept(model, tmp_path, monkeypatch, capsys, command):
    target = tmp_path / "target"
    target.mkdir() if command == "train" else target.write_text("keep")
    name = {"train": "m", "tune": "best.json", "recommend": "recs.csv"}[command]
    (tmp_path / name).symlink_to(target)
    args = {
        "recommend": ["recommend", "--model", str(model), "--all-users"],
        "tune": ["tune", "--model", "baseline", "--synthetic", "300x200x5000", "--trials", "1"],
        "train": TP,
    }[command]
    before = _tree(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, *args, "--out", str(tmp_path / name))
    assert code == 2 and "is a symbolic link; movierec does not write through links" in err
    assert _tree(tmp_path) == before
