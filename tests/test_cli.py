"""The command line: outputs of a run, --json, and user errors as one line with exit code 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from helpers import run_cli, run_main

TINY = ["--synthetic", "300x200x6000"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "mlp"
    run_main(["movierec", "train", "--model", "mlp", "--epochs", "3", "--out", str(out), "--json", *TINY])
    return out


def test_train_writes_model_metrics_and_plot(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    for key in ("model", "dataset", "n_train", "n_test", "test_rmse", "test_mae", "baseline_rmse", "history"):
        assert key in metrics
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    assert set(metrics["history"][0]) >= {"epoch", "train_loss", "val_rmse", "seconds"}
    assert metrics["noise_floor"] < metrics["test_rmse"]
    assert (trained / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (trained / "model.safetensors").stat().st_size > 0
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["rater"]["name"] == "mlp" and manifest["titles"][0].startswith("Synthetic movie")
    assert not trained.with_name("mlp.partial").exists()


def test_recommend_json_lists_k_unrated_items(trained, monkeypatch, capsys):
    code, out, _ = run_cli(
        monkeypatch, capsys, "recommend", "--model", str(trained), "--user", "7", "-k", "4", "--json"
    )
    assert code == 0
    items = json.loads(out)["items"]
    assert len(items) == 4 and all(i["title"] for i in items)


def test_evaluate_rescores_the_same_split(trained, monkeypatch, capsys):
    args = ["evaluate", "--model", str(trained), "--dataset", "synthetic", "--json", *TINY]
    code, out, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0, out
    metrics = json.loads((trained / "metrics.json").read_text())
    result = json.loads(out)
    assert result["n"] == metrics["n_test"]
    assert result["rmse"] == pytest.approx(metrics["test_rmse"], abs=1e-6)


def test_models_lists_each_model_on_a_line(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "models")
    assert code == 0
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert {"mlp", "baseline"} <= set(names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--model", "nope"], "unknown rating model 'nope'"),
        (["train", "--lr", "-1", *TINY], "learning rate"),
        (["train", "--synthetic", "axb"], "USERSxITEMSxRATINGS"),
        (["recommend", "--model", "/nonexistent/dir", "--user", "1"], "not a movierec model directory"),
        (["train", "--split", "sideways", *TINY], "unknown split"),
    ],
)
def test_user_errors_exit_2_with_one_clear_line(monkeypatch, capsys, tmp_path, args, message):
    code, _, err = run_cli(monkeypatch, capsys, *args, *(["--out", str(tmp_path / "o")] if args[0] == "train" else []))
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_corrupt_model_is_refused_clearly(trained, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text((trained / "manifest.json").read_text())
    (bad / "model.safetensors").write_bytes(b"not safetensors")
    code, _, err = run_cli(monkeypatch, capsys, "recommend", "--model", str(bad), "--user", "1")
    assert code == 2 and "corrupt" in err


@pytest.mark.parametrize(("model", "lr"), [("mlp", "1e9"), ("mf", "1e30")])  # mf: Adam keeps its loss finite
def test_failed_run_keeps_the_earlier_model(trained, monkeypatch, capsys, model, lr):
    before = (trained / "model.safetensors").read_bytes()
    args = ["train", "--model", model, "--lr", lr, "--epochs", "2", "--out", str(trained), *TINY]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "diverged" in err and "lower --lr" in err and "Traceback" not in err
    assert (trained / "model.safetensors").read_bytes() == before


def _interrupt(args: list[str], after: str | None, delay: float, tmp_path) -> subprocess.CompletedProcess:
    """Start the CLI, send a real SIGINT (once ``after`` shows on stderr, else after ``delay`` s)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "movierec", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
        # A shell starts background jobs with SIGINT ignored, and Python then never raises
        # KeyboardInterrupt: the child gets the default back, as under a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = ""
    if after is not None:
        deadline = time.monotonic() + 120
        while after not in seen and time.monotonic() < deadline and proc.poll() is None:
            seen += proc.stderr.readline()
    else:
        time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, seen + err)


def test_ctrl_c_during_training_says_how_to_resume_and_keeps_nothing_half_written(tmp_path):
    args = ["train", "--model", "mlp", "--synthetic", "400x300x20000", "--epochs", "200", "--out", "run"]
    result = _interrupt(args, "epoch   2/200", 0, tmp_path)
    assert result.returncode == 130, result.stderr[-2000:]
    assert "interrupted" in result.stderr and "--resume" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists() and (tmp_path / "run.partial" / "checkpoint.json").exists()


def test_ctrl_c_while_starting_up_is_one_line_too(tmp_path):
    # Several moments of start-up: a signal during PyTorch's import once ended in SIGINT (exit -2).
    for delay in (0.2, 0.35, 0.5, 0.65, 0.8):
        result = _interrupt(["models"], None, delay, tmp_path)
        if result.returncode == 0:
            continue  # it finished before the signal came: nothing to see
        assert result.returncode == 130, result.stderr[-2000:]
        assert "Traceback" not in result.stderr and "interrupted" in result.stderr


def test_a_file_it_may_not_read_is_one_line(tmp_path, monkeypatch, capsys):
    # As root a chmod stops nothing, so the refusal the OS would give is planted where files are opened.
    from movierec.data import readers

    def refused(self):  # noqa: ANN001, ANN202
        raise PermissionError(13, "Permission denied", str(tmp_path / "data" / "movies.csv"))

    monkeypatch.setattr(readers.Source, "open", refused)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ratings.csv").write_text("userId,movieId,rating\n1,1,4\n2,1,5\n")
    args = ["train", "--model", "baseline", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m")]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "Traceback" not in err
    assert (
        err.strip()
        == f"error: {tmp_path / 'data' / 'movies.csv'}: permission denied; make it readable, or name another"
    )


@pytest.mark.parametrize("where", ["data", "file", "thesis", "dot", "proc", "inside-file"])
def test_train_never_writes_over_what_it_did_not_write(tmp_path, monkeypatch, capsys, where):
    data = tmp_path / "data"
    data.mkdir()
    (data / "ratings.csv").write_text("userId,movieId,rating\n1,1,4\n1,2,3\n2,1,5\n2,2,4\n3,1,2\n3,2,5\n")
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "ch1.tex").write_text("years of work")
    (tmp_path / "notes.txt").write_text("keep")
    out = {
        "data": data,
        "file": tmp_path / "notes.txt",
        "thesis": thesis,
        "dot": tmp_path / ".",
        "proc": "/proc/movierec-out",
        "inside-file": tmp_path / "notes.txt" / "model",
    }[where]
    monkeypatch.chdir(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    code, _, err = run_cli(monkeypatch, capsys, "train", "--model", "baseline", "--data", str(data), "--out", str(out))
    assert code == 2 and "--out" in err and "Traceback" not in err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert (data / "ratings.csv").exists() and (thesis / "ch1.tex").read_text() == "years of work"


def test_a_second_run_into_the_same_out_is_refused(tmp_path, monkeypatch, capsys):
    from movierec import locks

    out = tmp_path / "model"
    with locks.lock(out):
        code, _, err = run_cli(monkeypatch, capsys, "train", "--model", "baseline", *TINY, "--out", str(out))
    assert code == 2 and "another movierec run (pid" in err
    assert not out.exists() and not list(tmp_path.iterdir())  # and the lock file is gone once released


@pytest.mark.parametrize(
    ("model", "flags", "says"),
    [
        ("baseline", ["--epochs", "5"], "fitted in one pass"),
        ("knn", ["--lr", "0.1"], "fitted in one pass"),
        ("als", ["--lr", "0.1"], "its own sweeps"),
        ("blend", ["--batch-size", "64"], "its own sweeps"),
    ],
)
def test_flags_a_model_would_ignore_are_refused(tmp_path, monkeypatch, capsys, model, flags, says):
    args = ["train", "--model", model, *flags, "--out", str(tmp_path / "m"), *TINY]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and says in err and "do not apply" in err and not (tmp_path / "m").exists()


def test_the_users_text_is_printed_as_it_is_never_as_markup(trained, monkeypatch, capsys, tmp_path):
    # Rich would read "[/x]" as a closing tag (a MarkupError traceback) and "[bold]" as a style.
    for args, shown in [
        (["--user", "[/x]"], "unknown user id '[/x]'"),
        (["--user", "[bold]abc"], "unknown user id '[bold]abc'"),
        (["--rate", "[/x]=5"], "unknown item id(s) in --rate: [/x]"),
    ]:
        code, _, err = run_cli(monkeypatch, capsys, "recommend", "--model", str(trained), *args)
        assert code == 2 and shown in err and "Traceback" not in err
    out = tmp_path / "odd[/x]name"
    code, stdout, err = run_cli(monkeypatch, capsys, "train", "--model", "baseline", *TINY, "--out", str(out))
    assert code == 0 and f"saved to {out}/" in (stdout + err).replace("\n", "")


def test_ctrl_c_advises_resume_only_where_a_checkpoint_waits(tmp_path, monkeypatch):
    import movierec.cli as cli

    monkeypatch.setattr(cli, "_checkpoints", [])
    assert "--resume" not in cli.interrupted_line()  # recommend, compare, tune: nothing to resume
    cli.resumable_from(tmp_path / "m.partial")
    assert "--resume" not in cli.interrupted_line()  # a closed-form train writes no checkpoint
    (tmp_path / "m.partial").mkdir()
    (tmp_path / "m.partial" / "checkpoint.json").write_text("{}")
    assert cli.interrupted_line().endswith("with the same command plus --resume")


def test_ctrl_c_stops_serve_with_one_line_and_130(trained, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _interrupt(["serve", "--model", str(trained), "--port", str(port)], "Uvicorn running", 0, tmp_path)
    assert result.returncode == 130, result.stderr[-2000:]
    after = result.stderr.split("Uvicorn running", 1)[1].splitlines()[1:]
    assert after == ["interrupted; nothing was written over any earlier result"]


def test_resume_on_a_closed_form_model_says_it_keeps_no_checkpoint(tmp_path, monkeypatch, capsys):
    args = ["train", "--model", "baseline", "--resume", *TINY, "--out", str(tmp_path / "m")]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "baseline is fitted in one pass (closed form) and keeps no checkpoint" in err
    assert not list(tmp_path.iterdir())
