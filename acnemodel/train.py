"""Fit, evaluate and write one run directory: model, history, metrics, curves, predictions."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acnedata.manifest import atomic_write_text
from acnemodel.augment import AugmentConfig
from acnemodel.data import DEFAULT_AUGMENT, DataSplits, load_dataset
from acnemodel.errors import ModelError
from acnemodel.metrics import confusion_matrix, per_class_report
from acnemodel.models import get_spec, make_model
from acnemodel.report import plot_confusion, plot_curves, predictions_markdown
from acnemodel.seeding import seed_everything


@dataclass(frozen=True)
class TrainConfig:
    """The same training for every model unless told otherwise (the paper's: adam, 24 epochs)."""

    epochs: int = 24
    batch_size: int = 32
    seed: int = 0
    protocol: str = "honest"
    test_fraction: float = 0.3
    image_size: tuple[int, int] | None = None  # None: the model's own (32×32, resnet 64×64)
    interpolation: str = "bilinear"
    augment: AugmentConfig | None = DEFAULT_AUGMENT  # None: no on-the-fly augmentation
    expand_to: int | None = None  # paper protocol pool size; None: the paper's 20,793
    per_class: bool = False
    allow_leaks: bool = False  # honest protocol: train even if test shares content with train
    learning_rate: float = 1e-3  # Adam's default, as the paper used adam untuned
    verbose: int = 2  # Keras's own progress: one line per epoch
    n_predictions: int = 5

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ModelError("epochs and batch size must be at least 1")

    def size_for(self, model: str) -> tuple[int, int]:
        return tuple(self.image_size) if self.image_size else get_spec(model).image_size


@dataclass
class RunResult:
    model: str
    out_dir: Path
    metrics: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)


def train(
    manifest: str | Path,
    model: str = "paper",
    out: str | Path = "run",
    config: TrainConfig | None = None,
) -> RunResult:
    """Load a manifest with the configured protocol and train one model into `out`."""
    config = config or TrainConfig()
    get_spec(model)  # unknown names fail before any decoding
    return train_on(load(manifest, model, config), model, out, config)


def load(manifest: str | Path, model: str, config: TrainConfig) -> DataSplits:
    """load_dataset with a TrainConfig's settings at the model's input size."""
    return load_dataset(
        manifest,
        config.size_for(model),
        interpolation=config.interpolation,
        protocol=config.protocol,
        test_fraction=config.test_fraction,
        seed=config.seed,
        batch_size=config.batch_size,
        augment=config.augment,
        expand_to=config.expand_to,
        per_class=config.per_class,
        allow_leaks=config.allow_leaks,
    )


def train_on(data: DataSplits, model_name: str, out: str | Path, config: TrainConfig) -> RunResult:
    """Fit a fresh model on prepared data, evaluate on the test part, write the run directory."""
    import keras

    parts = data.prepared.parts
    for name in ("train", "test"):
        if not len(parts[name]):
            raise ModelError(
                f"{data.info['manifest']}: the split leaves no {name} items; check "
                "the items' split fields or --test-fraction"
            )
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)  # per model, so a model's numbers do not depend on run order
    model = make_model(model_name, (*data.image_size, 3), len(data.class_names))
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    fit = model.fit(
        data.train,
        validation_data=data.validation,
        epochs=config.epochs,
        verbose=config.verbose,
        shuffle=False,  # the tf.data pipeline shuffles, seeded; this only silences Keras's note
    )
    seconds = time.perf_counter() - started
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    test_loss, test_accuracy = model.evaluate(data.test, verbose=0)

    test = parts["test"]
    probs = model.predict(test.x, batch_size=config.batch_size, verbose=0)
    predicted = probs.argmax(axis=1)
    matrix = confusion_matrix(test.y, predicted, len(data.class_names))
    report = per_class_report(matrix, data.class_names)
    picks = sorted(
        random.Random(config.seed).sample(range(len(test)), min(config.n_predictions, len(test)))
    )
    rows = [
        {
            "id": test.items[k]["id"],
            "true": int(test.y[k]),
            "predicted": int(predicted[k]),
            "true_name": data.class_names[int(test.y[k])],
            "predicted_name": data.class_names[int(predicted[k])],
            "confidence": round(float(probs[k].max()), 4),
        }
        for k in picks
    ]

    metrics = {
        "model": model_name,
        "test_loss": round(float(test_loss), 6),
        "test_accuracy": round(float(test_accuracy), 6),
        "macro_f1": report["macro_f1"],
        "per_class": report["per_class"],
        "confusion_matrix": matrix.tolist(),
        "class_names": data.class_names,
        "manifest": data.info["manifest"],
        "manifest_sha256": data.info["manifest_sha256"],
        "protocol": data.info["protocol"],
        "seed": config.seed,
        "split_counts": data.info["counts"],
        "expanded_copies": data.info.get("expanded_copies", 0),
        "leaked_test_items": data.info["leaked_test_items"],
        "validation_is_test": not len(parts["validation"]),
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "optimizer": f"adam(lr={config.learning_rate})",
        "loss": "categorical_crossentropy",
        "image_size": list(data.image_size),
        "interpolation": config.interpolation,
        "augment": (
            config.augment.to_dict()
            if config.augment and data.info["protocol"] == "honest"
            else None
        ),
        "parameters": int(model.count_params()),
        "train_seconds": round(seconds, 1),
        "predictions": rows,
        "keras_version": keras.__version__,
    }
    if data.info["protocol"] == "paper":
        metrics["paper_protocol"] = {
            k: data.info[k]
            for k in ("expand_to", "per_class", "short_of_target", "fixed_split_fields_ignored")
        }

    model.save(out_dir / "model.keras")
    _write_json(out_dir / "history.json", history)
    _write_json(out_dir / "metrics.json", metrics)
    title = f"{model_name}, {data.info['protocol']} protocol"
    plot_curves({model_name: history}, out_dir / "curves.png", title=title)
    plot_confusion(matrix, data.class_names, out_dir / "confusion.png", title=title)
    atomic_write_text(
        out_dir / "predictions.md", predictions_markdown(model_name, rows, data.class_names)
    )
    return RunResult(model=model_name, out_dir=out_dir, metrics=metrics, history=history)


def summary_line(result: RunResult) -> str:
    """One line per model for the console."""
    m = result.metrics
    counts = m["split_counts"]
    leak = f", {m['leaked_test_items']} test items leaked" if m["leaked_test_items"] else ""
    return (
        f"{m['model']}: test accuracy {100 * m['test_accuracy']:.2f}%, loss "
        f"{m['test_loss']:.4f}, macro F1 {m['macro_f1']:.3f} ({m['protocol']} protocol, "
        f"{counts['train']} train / {counts['test']} test{leak}, {m['epochs']} epochs, "
        f"{m['train_seconds']:.0f} s) → {result.out_dir}"
    )


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
