"""Predict classes for image files with a trained run; an unreadable file is reported, not fatal."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acnemodel.errors import ModelError
from acnemodel.images import ImageReadError, load_input

# Below this top-class probability a prediction is flagged: on four classes 0.6 is far from the
# 0.25 of a blind guess, yet still wrong often enough (see metrics.json's reliability bins) that a
# person should look. --min-confidence changes it.
LOW_CONFIDENCE = 0.6


@dataclass
class Prediction:
    path: str
    label: str | None = None
    confidence: float | None = None  # the top class's probability
    low_confidence: bool | None = None  # confidence under the threshold: a person should check
    probabilities: dict[str, float] | None = None
    sha256: str | None = None  # of the file's bytes, so a collection can find its item
    error: str | None = None  # one-line reason when the file could not be read


def read_run(run_dir: str | Path) -> dict:
    """metrics.json of a run (class names, input size, interpolation), with the model's path."""
    run = Path(run_dir)
    model_file, metrics_file = run / "model.keras", run / "metrics.json"
    for needed in (model_file, metrics_file):
        if not needed.is_file():
            raise ModelError(
                f"{run}: not a run directory ({needed.name} is missing); "
                "give the --out folder of `acnemodel train`"
            )
    try:
        meta = json.loads(metrics_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{metrics_file}: unreadable run metrics ({exc})") from None
    if not isinstance(meta, dict) or not {"class_names", "image_size"} <= meta.keys():
        raise ModelError(f"{metrics_file}: lacks class_names or image_size; retrain the run")
    meta["model_file"] = str(model_file)
    return meta


def predict_images(
    run_dir: str | Path, paths: Sequence[str | Path], min_confidence: float = LOW_CONFIDENCE
) -> list[Prediction]:
    """One Prediction per path, in order; unreadable images carry `error` instead of a label.

    With the run's recipe asking for test-time augmentation, the probabilities are averaged over
    each image and its mirror, as the run's own test figures were.
    """
    import keras

    import acnemodel.patch_codes  # registers the k-means model's feature layer
    import acnemodel.severity  # registers the layer a presence-trained model ends in
    import acnemodel.transfer  # noqa: F401  registers the layers a transfer model is saved with
    from acnemodel.fitting import predict_probs

    meta = read_run(run_dir)
    model = keras.saving.load_model(meta["model_file"])
    tta = bool((meta.get("recipe") or {}).get("tta"))
    size = tuple(meta["image_size"])
    interpolation = meta.get("interpolation", "bilinear")
    names = meta["class_names"]
    out = [Prediction(path=str(p)) for p in paths]
    ready: list[int] = []
    inputs = []
    for n, path in enumerate(paths):
        try:
            inputs.append(load_input(path, size, interpolation))
            out[n].sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            ready.append(n)
        except ImageReadError as exc:
            out[n].error = str(exc)
    if inputs:
        probs = predict_probs(model, np.stack(inputs), tta=tta)
        for n, row in zip(ready, probs, strict=True):
            top = float(row.max())
            out[n].label = names[int(row.argmax())]
            out[n].confidence = round(top, 4)
            out[n].low_confidence = top < min_confidence
            out[n].probabilities = {c: round(float(p), 4) for c, p in zip(names, row, strict=True)}
    return out


def predictions_json(
    run_dir: str | Path, predictions: Sequence[Prediction], min_confidence: float
) -> dict[str, Any]:
    """The `--json` document: plain JSON that acnedata review reads without TensorFlow."""
    meta = read_run(run_dir)
    return {
        "format": "acnemodel-predictions/1",
        "run": str(Path(run_dir).resolve()),
        "model": meta.get("model"),
        "class_names": meta["class_names"],
        "min_confidence": min_confidence,
        "predictions": [{k: v for k, v in asdict(p).items() if v is not None} for p in predictions],
    }
