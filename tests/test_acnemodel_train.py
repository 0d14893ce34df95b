"""acnemodel training: run outputs, same seed same numbers, compare, predict (real TensorFlow)."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
from manifest_factory import make_manifest
from typer.testing import CliRunner

from acnemodel.cli import app
from acnemodel.compare import compare
from acnemodel.train import TrainConfig, train

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"

# Keras 3.15 itself trips NumPy 2's copy-keyword deprecation on every fit; not ours to fix.
pytestmark = [
    pytest.mark.slow,  # real training, 1–2 epochs: ~30 s for the module on 2 cores
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("train"), clusters_per_class=5, nd_clusters=1)


@pytest.fixture(scope="module")
def run_dir(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    result = runner.invoke(
        app,
        [
            "train",
            str(manifest),
            "--model",
            "paper",
            "--out",
            str(out),
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--seed",
            "7",
        ],
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert "paper: test accuracy" in result.stdout  # the summary line
    return out


def test_train_writes_every_output(run_dir: Path, manifest: Path) -> None:
    for name in (
        "model.keras",
        "history.json",
        "metrics.json",
        "curves.png",
        "confusion.png",
        "predictions.md",
    ):
        assert (run_dir / name).is_file(), name
    for png in ("curves.png", "confusion.png"):
        assert (run_dir / png).read_bytes()[:8] == PNG
    history = json.loads((run_dir / "history.json").read_text())
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= history.keys()
    assert all(len(v) == 2 for v in history.values())
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["protocol"] == "honest" and m["seed"] == 7 and m["epochs"] == 2
    assert 0 <= m["test_accuracy"] <= 1 and m["test_loss"] > 0
    assert m["class_names"] == ["comedonal", "papular", "pustular"]
    assert set(m["per_class"]) == set(m["class_names"])
    assert {"precision", "recall", "f1", "support"} <= m["per_class"]["papular"].keys()
    matrix = m["confusion_matrix"]
    assert len(matrix) == 3 and sum(map(sum, matrix)) == m["split_counts"]["test"]
    assert m["manifest_sha256"] == __import__("hashlib").sha256(manifest.read_bytes()).hexdigest()
    counts = m["split_counts"]
    assert counts["train"] + counts["validation"] + counts["test"] == 27 and counts["validation"]
    assert m["leaked_test_items"] == 0 and m["augment"]["fill_mode"] == "nearest"
    lines = [ln for ln in (run_dir / "predictions.md").read_text().splitlines() if "True:" in ln]
    assert len(lines) == 5 and all("Predict:" in ln for ln in lines)


def test_same_seed_same_numbers(manifest: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=8, seed=3, verbose=0)
    first = train(manifest, "kevgg", tmp_path / "a", config)
    second = train(manifest, "kevgg", tmp_path / "b", config)
    assert first.metrics["test_loss"] == second.metrics["test_loss"]
    assert first.metrics["test_accuracy"] == second.metrics["test_accuracy"]
    assert first.history == second.history
    assert first.metrics["confusion_matrix"] == second.metrics["confusion_matrix"]
    other = train(
        manifest, "kevgg", tmp_path / "c", TrainConfig(epochs=2, batch_size=8, seed=4, verbose=0)
    )
    assert other.history != first.history


def test_paper_protocol_run_shows_the_leak(manifest: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=16, protocol="paper", expand_to=120, verbose=0)
    result = train(manifest, "kecnn", tmp_path / "p", config)
    m = result.metrics
    assert m["protocol"] == "paper" and m["expanded_copies"] == 120 - 27
    assert m["split_counts"]["train"] + m["split_counts"]["test"] == 120
    assert m["leaked_test_items"] > 0 and m["augment"] is None


def test_compare_writes_table_and_one_figure(manifest: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    config = TrainConfig(epochs=1, batch_size=8, verbose=0)
    table = compare(manifest, ["paper", "kecnn"], tmp_path, config, echo=lines.append)
    assert [ln.split(":")[0] for ln in lines] == ["paper", "kecnn"]
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG
    assert (tmp_path / "paper" / "model.keras").is_file()
    saved = json.loads((tmp_path / "table.json").read_text())
    assert saved == table and [m["model"] for m in saved["models"]] == ["paper", "kecnn"]
    ids = [[p["id"] for p in m["predictions"]] for m in saved["models"]]
    assert len(ids[0]) == 5 and ids[0] == ids[1]  # the same 5 test items for every model
    md = (tmp_path / "table.md").read_text()
    assert "| paper |" in md and "| kecnn |" in md and md.count("True: ") == 10


def test_predict_handles_a_bad_file(run_dir: Path, manifest: Path, tmp_path: Path) -> None:
    good = manifest.parent / "images" / "pustular-c1-0.png"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    missing = tmp_path / "missing.png"
    result = runner.invoke(app, ["predict", str(run_dir), str(broken), str(good), str(missing)])
    assert result.exit_code == 1  # not every image could be read
    assert "Traceback" not in result.output + result.stderr
    out = result.stdout.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"{good}: ")
    assert all(c in out[0] for c in ("comedonal", "papular", "pustular"))
    err = result.stderr.strip().splitlines()
    assert len(err) == 2
    assert "broken.jpg" in err[0] and "not a readable image" in err[0]
    assert "missing.png" in err[1]


def test_predict_on_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", str(tmp_path), "x.png"])
    assert result.exit_code == 1 and "not a run directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
