"""The k-means model: codebook fitting, the coding layer against numpy, a run's round trip."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
from manifest_factory import CLASSES, make_manifest
from typer.testing import CliRunner

from acnemodel.cli import app
from acnemodel.errors import ModelError
from acnemodel.patch_codes import (
    LOGISTIC_C,
    PatchCodes,
    fit_codebook,
    fit_patch_codes,
    fit_softmax,
    normalise,
    sample_patches,
)

runner = CliRunner()


def images(n: int = 12, size: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size, 3)).astype(np.float32)


def numpy_codes(x: np.ndarray, layer: PatchCodes) -> np.ndarray:
    """The layer's pooled codes written out with numpy, patch by patch."""
    mean, whiten, cents = (np.asarray(w) for w in (layer.mean, layer.whiten, layer.centroids))
    p, s = layer.patch, layer.stride
    out = []
    for image in x:
        starts = [range(0, image.shape[a] - p + 1, s) for a in (0, 1)]
        rows = np.array([[image[i : i + p, j : j + p].reshape(-1) for j in starts[1]]
                         for i in starts[0]])  # fmt: skip
        z = (normalise(rows) - mean) @ whiten
        d = np.linalg.norm(z[..., None, :] - cents, axis=-1)
        codes = np.maximum(d.mean(-1, keepdims=True) - d, 0)
        h, w = codes.shape[0] // 2, codes.shape[1] // 2
        quads = [codes[:h, :w], codes[:h, w:], codes[h:, :w], codes[h:, w:]]
        out.append(np.concatenate([q.mean((0, 1)) for q in quads] + [codes.max((0, 1))]))
    return np.array(out)


def test_the_layer_codes_as_the_numpy_reference_does():
    x = images()
    layer = PatchCodes(k=8, patch=4, stride=2)
    layer.build(x.shape)
    layer.set_codebook(fit_codebook(x, k=8, patch=4, stride=2, per_image=20))
    got = np.asarray(layer.pooled(x))
    assert got.shape == (len(x), 5 * 8)
    assert np.abs(got).max() > 0.1  # not a zero codebook matching a zero reference
    np.testing.assert_allclose(got, numpy_codes(x, layer), rtol=1e-3, atol=1e-4)


def test_the_codebook_whitens_the_patches_it_was_fit_on():
    x = images(n=20, size=16)
    book = fit_codebook(x, k=10, patch=4, stride=2, per_image=30, seed=1)
    assert book.centroids.shape == (10, 4 * 4 * 3 + 1)
    rows = normalise(sample_patches(x, 4, 2, 30, np.random.default_rng(1)))
    white = np.cov((rows - book.mean) @ book.whiten, rowvar=False)
    eig = np.linalg.eigvalsh(white)
    # ZCA with a floor: every direction scaled to at most unit variance, the strong ones to ~1
    assert eig.max() < 1.0 and eig.max() > 0.9


def test_too_few_patches_or_too_small_images_are_one_line_errors():
    with pytest.raises(ModelError, match=r"at least 256 training patches.*add images"):
        fit_codebook(images(n=2, size=10), per_image=5)
    with pytest.raises(ModelError, match="at least 6×6 pixels"):
        fit_codebook(images(n=4, size=4))


def test_fitting_standardises_the_codes_of_train():
    x = images(n=16, size=24)
    inputs = keras.Input((24, 24, 3))
    model = keras.Model(inputs, PatchCodes(k=12, name="codes")(inputs))
    fit_patch_codes(model, x, seed=0)
    codes = model.predict(x, verbose=0)
    np.testing.assert_allclose(codes.mean(axis=0), 0, atol=1e-3)
    live = np.asarray(model.get_layer("codes").code_std) > 1e-3
    np.testing.assert_allclose(codes[:, live].std(axis=0), 1, atol=1e-2)


@pytest.mark.parametrize("present", [(0, 2, 3), (1, 3)])
def test_the_head_is_the_logistic_regression_of_the_codes(present):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(len(present))
    y = rng.choice(present, 90)
    codes = rng.normal(size=(90, 7)) + y[:, None] * 0.5  # classes a little apart
    dense = keras.layers.Dense(4, activation="softmax")
    dense.build((None, 7))
    fit_softmax(dense, codes, y)
    got = np.asarray(dense(codes.astype(np.float32)))
    want = LogisticRegression(C=LOGISTIC_C, class_weight="balanced", max_iter=2000).fit(codes, y)
    np.testing.assert_allclose(got[:, list(present)], want.predict_proba(codes), atol=1e-4)
    absent = [c for c in range(4) if c not in present]
    assert got[:, absent].max() < 1e-6  # a class train never shows is never predicted


@pytest.fixture(scope="module")
def small_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("kmeans"), clusters_per_class=6, size=32)


def test_a_kmeans_run_saves_its_codebook_and_predicts(small_manifest, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["train", str(small_manifest), "--out", str(out), "--model", "kmeans", "--epochs", "2",
         "--batch-size", "8", "--image-size", "32", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = keras.saving.load_model(out / "model.keras").get_layer("patch_codes")
    assert np.abs(np.asarray(saved.centroids)).max() > 0  # the fitted codebook, not the zeros
    assert not np.allclose(np.asarray(saved.code_std), 1)
    image = next((small_manifest.parent / "images").glob("*.png"))
    got = runner.invoke(app, ["predict", str(out), str(image), "--json"])
    assert got.exit_code == 0, got.output
    probs = json.loads(got.stdout)["predictions"][0]["probabilities"]
    assert set(probs) == set(CLASSES) and sum(probs.values()) == pytest.approx(1, abs=1e-3)
