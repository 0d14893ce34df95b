"""Predict classes for image files with a trained run; an unreadable file is reported, not fatal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acnemodel.errors import ModelError
from acnemodel.images import ImageReadError, load_input


@dataclass
class Prediction:
    path: str
    label: str | None = None
    probabilities: dict[str, float] | None = None
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


def predict_images(run_dir: str | Path, paths: Sequence[str | Path]) -> list[Prediction]:
    """One Prediction per path, in order; unreadable images carry `error` instead of a label."""
    import keras

    meta = read_run(run_dir)
    model = keras.saving.load_model(meta["model_file"])
    size = tuple(meta["image_size"])
    interpolation = meta.get("interpolation", "bilinear")
    names = meta["class_names"]
    out = [Prediction(path=str(p)) for p in paths]
    ready: list[int] = []
    inputs = []
    for n, path in enumerate(paths):
        try:
            inputs.append(load_input(path, size, interpolation))
            ready.append(n)
        except ImageReadError as exc:
            out[n].error = str(exc)
    if inputs:
        probs = model.predict(np.stack(inputs), verbose=0)
        for n, row in zip(ready, probs, strict=True):
            out[n].label = names[int(row.argmax())]
            out[n].probabilities = {c: round(float(p), 4) for c, p in zip(names, row, strict=True)}
    return out
