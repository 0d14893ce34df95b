"""Recipes, honest selection, the exact paper protocol, CV, transfer learning, predict --json."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from manifest_factory import make_manifest
from typer.testing import CliRunner

from acnemodel.cli import app
from acnemodel.data import load_dataset
from acnemodel.errors import ModelError
from acnemodel.recipe import PAPER, Recipe
from acnemodel.train import TrainConfig, prepare_model, train

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = [
    pytest.mark.slow,  # real training, 1–3 epochs on 16–32 px images
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("recipes"), clusters_per_class=6, size=32)


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def kecnn_run(manifest: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("kecnn")
    return train(manifest, "kecnn", out, TrainConfig(epochs=3, batch_size=8, seed=1, verbose=0))


def test_honest_run_reports_what_a_reviewer_asks(kecnn_run) -> None:
    m = json.loads((kecnn_run.out_dir / "metrics.json").read_text())
    assert m["validation_source"] == "a grouped, stratified 0.15 of train"
    assert m["validation_is_test"] is False and m["validation_size"] > 0
    assert m["split_counts"]["validation"] == m["validation_size"]
    for key in ("balanced_accuracy", "macro_f1", "macro_auroc", "ece"):
        assert 0 <= m[key] <= 1, key
    assert {"majority", "stratified"} == m["baselines"].keys()
    low, high = m["intervals"]["balanced_accuracy"]
    assert low <= m["balanced_accuracy"] <= high and m["intervals"]["resampled"] == "groups"
    assert m["test_size"] == m["split_counts"]["test"] == sum(m["test_class_counts"].values())
    assert all("recall" in v and "auroc" in v for v in m["per_class"].values())
    assert (kecnn_run.out_dir / "reliability.png").read_bytes()[:8] == PNG
    assert m["recipe"]["learning_rate"] == 3e-4 and m["recipe"]["monitor"] == "val_loss"


def test_the_best_validation_epoch_is_the_one_kept(kecnn_run, manifest: Path) -> None:
    import keras

    history = kecnn_run.history
    chosen = kecnn_run.metrics["selection"]
    assert chosen["epochs_run"] == len(history["val_loss"]) == 3
    assert chosen["selected_epoch"] == 1 + int(np.argmin(history["val_loss"]))
    # the saved model IS that epoch's: its validation loss is the one recorded for it
    data = load_dataset(manifest, (32, 32), seed=1, batch_size=8)
    val = data.prepared.parts["validation"]
    model = keras.saving.load_model(kecnn_run.out_dir / "model.keras")
    probs = model.predict(val.x, verbose=0)
    loss = float(-np.log(np.clip(probs[np.arange(len(val)), val.y], 1e-7, 1)).mean())
    assert loss == pytest.approx(history["val_loss"][chosen["selected_epoch"] - 1], rel=1e-4)
    # kecnn's fix lives outside its layers: a fixed input scaling in front, same architecture
    assert type(model.layers[0]).__name__ == "Normalization"
    inner = model.layers[1]
    assert [type(layer).__name__ for layer in inner.layers][:2] == ["Conv2D", "Conv2D"]


def test_prior_bias_starts_at_the_train_log_priors() -> None:
    from acnemodel.models import make_model

    model = make_model("kecnn", (32, 32, 3), 3)
    y = np.array([0] * 7 + [1] * 2 + [2] * 0)
    prepare_model(model, y, 3, prior_bias=True)
    bias = model.layers[-1].bias.numpy()
    expected = np.log(np.array([8, 3, 1]) / 12)  # add-one counts: an empty class stays finite
    assert np.allclose(bias, expected, atol=1e-6)


def test_paper_protocol_keeps_the_papers_training(manifest: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=16, protocol="paper", expand_to=90, verbose=0)
    assert config.recipe_for("kecnn", "paper") == PAPER == Recipe()
    result = train(manifest, "kecnn", tmp_path / "p", config)
    m = result.metrics
    assert m["optimizer"] == "adam(lr=0.001)" and m["recipe"]["patience"] is None
    assert m["selection"]["epochs_run"] == m["selection"]["selected_epoch"] == 2  # the last
    assert m["validation_source"].startswith("none") and m["validation_is_test"] is True
    assert m["leaked_test_items"] > 0
    import keras

    model = keras.saving.load_model(tmp_path / "p" / "model.keras")
    assert type(model.layers[0]).__name__ == "Conv2D"  # no input scaling under the paper's


def test_batch_mix_blends_labels_and_weights_alike() -> None:
    import tensorflow as tf

    from acnemodel.mix import BatchMix

    x = tf.random.uniform((8, 16, 16, 3), seed=1)
    y = tf.one_hot([0, 1, 2, 0, 1, 2, 0, 1], 3)
    w = tf.constant([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0])
    for kwargs in ({"mixup": 0.4}, {"cutmix": 1.0}, {"mixup": 0.4, "cutmix": 1.0}):
        a = BatchMix(seed=3, **kwargs).mix_batch(x, y, w)
        b = BatchMix(seed=3, **kwargs).mix_batch(x, y, w)
        for left, right in zip(a, b, strict=True):
            assert np.array_equal(left.numpy(), right.numpy())  # seeded
        mx, my, mw = (t.numpy() for t in a)
        assert mx.shape == x.shape and np.allclose(my.sum(axis=1), 1.0)
        assert (mw >= 1.0 - 1e-6).all() and (mw <= 3.0 + 1e-6).all()


def test_strong_recipe_trains_with_every_trick(manifest: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        epochs=2,
        batch_size=8,
        image_size=(32, 32),
        verbose=0,
        recipe={"cutmix": 1.0, "warmup_epochs": 1},
    )
    m = train(manifest, "strong", tmp_path / "s", config).metrics
    r = m["recipe"]
    assert r["schedule"] == "cosine" and r["mixup"] > 0 and r["cutmix"] == 1.0
    assert r["class_balance"] and r["tta"] and r["label_smoothing"] > 0
    assert "label smoothing" in m["loss"] and 0 <= m["balanced_accuracy"] <= 1


def test_unknown_recipe_setting_is_refused() -> None:
    with pytest.raises(ModelError, match="unknown recipe setting"):
        TrainConfig(recipe={"warmup": 3}).recipe_for("strong", "honest")
    with pytest.raises(ModelError, match="schedule must be one of"):
        Recipe(schedule="step")


def test_folds_on_the_command_line(manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    result = runner.invoke(
        app,
        ["compare", str(manifest), "--models", "paper", "--folds", "3", "--epochs", "1",
         "--batch-size", "8", "--out", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    cv = json.loads((out / "cv.json").read_text())
    assert cv["folds"] == 3 and len(cv["fold_info"]) == 3
    ids = [i for f in cv["fold_info"] for i in f["test_ids"]]
    assert len(ids) == len(set(ids)) == 36  # every item tested exactly once
    entry = cv["models"]["paper"]["balanced_accuracy"]
    assert len(entry["folds"]) == 3
    assert entry["mean"] == pytest.approx(np.mean(entry["folds"]), abs=1e-4)
    assert entry["sd"] == pytest.approx(np.std(entry["folds"], ddof=1), abs=1e-4)
    assert {"majority", "stratified"} == cv["baselines"].keys()
    md = (out / "cv.md").read_text()
    assert "| paper |" in md and "| majority baseline |" in md and " ± " in md
    assert (out / "fold-2" / "paper" / "metrics.json").is_file()
    line = one_line_error(
        runner.invoke(app, ["compare", str(manifest), "--folds", "3", "--protocol", "paper"])
    )
    assert "--folds needs --protocol honest" in line
    line = one_line_error(runner.invoke(app, ["train", str(manifest), "--folds", "1"]))
    assert "--folds 1: cross-validation needs at least 2 folds" in line


def save_backbone_weights(name: str, path: Path, size: int = 32) -> Path:
    """What a user with their own pretrained backbone has: a weights file, made here offline."""
    from acnemodel.transfer import make_backbone

    make_backbone(name, (size, size, 3), None).save_weights(path)
    return path


def test_transfer_from_a_weights_file_runs_both_phases(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "small", clusters_per_class=3, size=32)
    weights = save_backbone_weights("MobileNetV3Small", tmp_path / "mnv3.weights.h5")
    out = tmp_path / "t"
    result = runner.invoke(
        app,
        ["train", str(manifest), "--backbone", "mobilenetv3small", "--weights", str(weights),
         "--epochs", "2", "--batch-size", "8", "--image-size", "32", "--out", str(out),
         "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == "transfer-MobileNetV3Small"
    assert m["backbone"] == {"name": "MobileNetV3Small", "weights": str(weights)}
    phases = m["selection"]["phases"]
    assert [p["phase"] for p in phases] == ["head", "fine-tune"]
    assert phases[1]["learning_rate"] == pytest.approx(phases[0]["learning_rate"] / 10)
    # predict loads the saved transfer model and gives probabilities
    image = manifest.parent / "images" / "papular-c0-0.png"
    got = runner.invoke(app, ["predict", str(out), str(image), "--json"])
    assert got.exit_code == 0, got.output
    doc = json.loads(got.stdout)
    assert sum(doc["predictions"][0]["probabilities"].values()) == pytest.approx(1, abs=1e-3)


def test_each_backbone_builds_and_loads_its_own_weights(tmp_path: Path) -> None:
    from acnemodel.transfer import build_transfer

    model, _ = build_transfer("ResNet50", None, (32, 32, 3), 4)
    assert model.output_shape == (None, 4)
    weights = save_backbone_weights("EfficientNetB0", tmp_path / "b0.weights.h5")
    model, backbone = build_transfer("EfficientNetB0", str(weights), (32, 32, 3), 3)
    from acnemodel.transfer import make_backbone

    fresh = make_backbone("EfficientNetB0", (32, 32, 3), None)
    fresh.load_weights(weights)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(backbone.get_weights(), fresh.get_weights(), strict=True)
    )


def test_transfer_errors_are_one_line(manifest: Path, tmp_path: Path) -> None:
    wrong = save_backbone_weights("MobileNetV3Small", tmp_path / "m.weights.h5")
    base = ["train", str(manifest), "--epochs", "1", "--image-size", "32", "--out", str(tmp_path)]
    line = one_line_error(runner.invoke(app, [*base, "--backbone", "vgg16", "--weights", "none"]))
    assert "unknown backbone 'vgg16'" in line and "EfficientNetB0" in line
    line = one_line_error(
        runner.invoke(app, [*base, "--backbone", "ResNet50", "--weights", "nope.h5"])
    )
    assert "nope.h5: no such file" in line and "imagenet" in line
    line = one_line_error(
        runner.invoke(app, [*base, "--backbone", "EfficientNetB0", "--weights", str(wrong)])
    )
    assert line.startswith("error: backbone EfficientNetB0:")


def test_predict_prints_the_top_class_and_flags_doubt(kecnn_run, manifest: Path) -> None:
    images = [
        str(manifest.parent / "images" / n) for n in ("papular-c0-0.png", "pustular-c1-0.png")
    ]
    run = str(kecnn_run.out_dir)
    doc = json.loads(runner.invoke(app, ["predict", run, *images, "--json"]).stdout)
    assert doc["format"] == "acnemodel-predictions/1" and doc["class_names"] == [
        "comedonal",
        "papular",
        "pustular",
    ]
    for p, path in zip(doc["predictions"], images, strict=True):
        assert p["path"] == path and len(p["sha256"]) == 64
        assert p["confidence"] == max(p["probabilities"].values())
        assert p["label"] == max(p["probabilities"], key=p["probabilities"].get)
        assert p["low_confidence"] == (p["confidence"] < 0.6)
    flagged = runner.invoke(app, ["predict", run, *images, "--min-confidence", "1"])
    lines = flagged.stdout.strip().splitlines()
    assert len(lines) == 2 and all("LOW CONFIDENCE (< 1)" in ln for ln in lines)
    top = doc["predictions"][0]
    assert lines[0].startswith(f"{images[0]}: {top['label']} {top['confidence']:.3f}")
    calm = runner.invoke(app, ["predict", run, *images, "--min-confidence", "0"])
    assert "LOW CONFIDENCE" not in calm.stdout
    line = one_line_error(runner.invoke(app, ["predict", run, *images, "--min-confidence", "2"]))
    assert "--min-confidence 2" in line
