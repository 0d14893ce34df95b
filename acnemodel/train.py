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
from acnemodel.data import DEFAULT_AUGMENT, DataSplits, load_dataset, to_datasets
from acnemodel.errors import ModelError
from acnemodel.evaluate import baselines, evaluate
from acnemodel.fitting import compile_model, fit, predict_probs, steps_per_epoch
from acnemodel.metrics import confusion_matrix
from acnemodel.models import get_spec, make_model
from acnemodel.presence import plan as presence_plan
from acnemodel.recipe import HONEST_PATIENCE, PAPER, Recipe
from acnemodel.report import plot_confusion, plot_curves, plot_reliability, predictions_markdown
from acnemodel.seeding import seed_everything
from acnemodel.split import group_keys


@dataclass(frozen=True)
class TrainConfig:
    """The same training for every model unless told otherwise.

    Under `--protocol paper` every model trains as the paper did (Adam at 0.001, 24 epochs, the
    last epoch kept, no validation set). Under `honest` each model trains by its registered
    recipe (models.py) with a validation part carved out of train choosing the epoch; `recipe`
    overrides single settings of either (see acnemodel.recipe.Recipe).
    """

    epochs: int = 24
    batch_size: int = 32
    seed: int = 0
    protocol: str = "honest"
    test_fraction: float = 0.3
    validation_fraction: float = 0.15  # honest: grouped share of train held out for selection
    image_size: tuple[int, int] | None = None  # None: the model's own (32×32, resnet 64×64)
    interpolation: str = "bilinear"
    augment: AugmentConfig | None = DEFAULT_AUGMENT  # None: no on-the-fly augmentation
    expand_to: int | None = None  # paper protocol pool size; None: the paper's 20,793
    per_class: bool = False
    allow_leaks: bool = False  # honest protocol: train even if test shares content with train
    learning_rate: float | None = None  # None: the recipe's (the paper's 0.001 under paper)
    recipe: dict[str, Any] | None = None  # Recipe field → value, over the model's recipe
    presence: str | None = None  # extra field naming each item's classes: train on presences
    backbone: str | None = None  # a keras.applications network instead of a registered model
    weights: str = "imagenet"  # the backbone's: imagenet, none, or a weights file
    verbose: int = 2  # Keras's own progress: one line per epoch
    n_predictions: int = 5

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ModelError("epochs and batch size must be at least 1")
        if not 0 <= self.validation_fraction < 1:
            raise ModelError("validation fraction must be in [0, 1)")

    def size_for(self, model: str) -> tuple[int, int]:
        if self.image_size:
            return tuple(self.image_size)
        return TRANSFER_SIZE if self.backbone else get_spec(model).image_size

    def recipe_for(self, model: str, protocol: str) -> Recipe:
        """The paper's recipe under the paper protocol, else the model's; then the overrides."""
        if protocol == "paper":
            base = PAPER
        elif self.backbone:
            base = TRANSFER_RECIPE
        else:
            base = get_spec(model).recipe
        overrides = dict(self.recipe or {})
        if self.learning_rate is not None:
            overrides["learning_rate"] = self.learning_rate
        return base.with_overrides(overrides)


TRANSFER_SIZE = (96, 96)
TRANSFER_RECIPE = Recipe(
    learning_rate=1e-3,
    schedule="cosine",
    warmup_epochs=1,
    label_smoothing=0.1,
    class_balance=True,
    patience=HONEST_PATIENCE,
    tta=True,
)


@dataclass
class RunResult:
    model: str
    out_dir: Path
    metrics: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)


LEFT_OUT_WHY = "its content links (a mosaic and the photos it shows) would cross the split"
MOVED_WHY = "their group shares content with train (acnedata's region matcher)"


def id_summary(ids: list[str], why: str) -> dict[str, Any]:
    """How many items a split repair touched (left out, moved to train), why, and the first."""
    return {"items": len(ids), "why": why if ids else None, "first": ids[:5]}


def train(
    manifest: str | Path,
    model: str = "paper",
    out: str | Path = "run",
    config: TrainConfig | None = None,
) -> RunResult:
    """Load a manifest with the configured protocol and train one model into `out`."""
    config = config or TrainConfig()
    model = run_name(model, config)  # unknown names fail before any decoding
    return train_on(load(manifest, model, config), model, out, config)


def run_name(model: str, config: TrainConfig) -> str:
    """The model's registry name, or `transfer-<Backbone>`; both checked."""
    if config.backbone:
        from acnemodel.backbones import backbone_name, check_weights

        check_weights(config.weights)
        return f"transfer-{backbone_name(config.backbone)}"
    get_spec(model)
    return model


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
        validation_fraction=config.validation_fraction,
    )


def class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """n / (k · n_c): every class weighs as much as the others in the loss (0 for an absent one)."""
    counts = np.bincount(y, minlength=num_classes).astype(float)
    return np.divide(
        len(y), num_classes * counts, out=np.zeros(num_classes), where=counts > 0
    ).astype(np.float32)


def train_on(data: DataSplits, model_name: str, out: str | Path, config: TrainConfig) -> RunResult:
    """Fit a fresh model by its recipe, choose the epoch on validation, evaluate test once."""
    import keras

    parts = data.prepared.parts
    for name in ("train", "test"):
        if not len(parts[name]):
            raise ModelError(
                f"{data.info['manifest']}: the split leaves no {name} items; check "
                "the items' split fields or --test-fraction"
            )
    protocol = data.info["protocol"]
    recipe = config.recipe_for(model_name, protocol)
    n_classes = len(data.class_names)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_part = parts["train"]
    mix = None
    if recipe.mixup or recipe.cutmix:
        from acnemodel.mix import BatchMix

        mix = BatchMix(recipe.mixup, recipe.cutmix, seed=config.seed)
    present = presence_plan(
        config.presence, protocol, config.backbone, train_part.items, train_part.y,
        data.class_names, data.info["manifest"],
    )  # fmt: skip
    data = to_datasets(
        data.prepared,
        data.image_size,
        batch_size=config.batch_size,
        seed=config.seed,
        augment=config.augment if protocol == "honest" else None,
        class_weights=class_weights(train_part.y, n_classes) if recipe.class_balance else None,
        mix=mix,
        targets=present.targets if present else None,
    )
    # validation: the carved part; under the paper protocol the test set, watched only
    watched = parts["validation"] if len(parts["validation"]) else parts["test"]
    seed_everything(config.seed)  # per model, so a model's numbers do not depend on run order
    shape = (*data.image_size, 3)
    started = time.perf_counter()
    if config.backbone:
        from acnemodel.finetune import fit_transfer

        model, history, chosen = fit_transfer(
            model_name, config.weights, shape, n_classes, data.train, watched, recipe, config
        )
    else:
        model = make_model(model_name, shape, n_classes)
        spec = get_spec(model_name)
        if spec.prefit:
            spec.prefit(model, train_part.x, train_part.y, config.seed)
        if present:
            from acnemodel.severity import sigmoid_head

            model = sigmoid_head(model, present.targets)
        if protocol == "honest":
            if not present:
                prepare_model(model, train_part.y, n_classes, spec.prior_bias)
            if spec.standardize:
                model = with_input_scaling(model, train_part.x)
        steps = steps_per_epoch(len(train_part), config.batch_size)
        compile_model(model, recipe, steps, config.epochs, present.order if present else None)
        history, chosen = fit(
            model, data.train, watched, n_classes, recipe, config.epochs, config.verbose,
            to_classes=present.to_classes if present else None,
        )  # fmt: skip
        if present:
            from acnemodel.severity import with_severity

            model = with_severity(model, present.order)
    seconds = time.perf_counter() - started

    test = parts["test"]
    probs = predict_probs(model, test.x, tta=recipe.tta, batch_size=config.batch_size)
    predicted = probs.argmax(axis=1)
    test_loss = float(-np.log(np.clip(probs[np.arange(len(test)), test.y], 1e-7, 1)).mean())
    groups = group_keys([i for part in parts.values() for i in part.items])
    figures = evaluate(
        test.y,
        probs,
        train_part.y,
        data.class_names,
        groups=[groups[i["id"]] for i in test.items],
        seed=config.seed,
    )
    matrix = confusion_matrix(test.y, predicted, n_classes)
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
        "test_loss": round(test_loss, 6),
        "test_accuracy": figures["accuracy"],
        "balanced_accuracy": figures["balanced_accuracy"],
        "macro_f1": figures["macro_f1"],
        "macro_auroc": figures["macro_auroc"],
        "ece": figures["calibration"]["ece"],
        "intervals": figures["intervals"],
        "baselines": figures["baselines"],
        "test_size": figures["test_size"],
        "test_class_counts": figures["test_class_counts"],
        "per_class": figures["per_class"],
        "calibration_bins": figures["calibration"]["bins"],
        "confusion_matrix": matrix.tolist(),
        "class_names": data.class_names,
        "manifest": data.info["manifest"],
        "manifest_sha256": data.info["manifest_sha256"],
        "protocol": protocol,
        "seed": config.seed,
        "split_counts": data.info["counts"],
        "expanded_copies": data.info.get("expanded_copies", 0),
        "leaked_test_items": data.info["leaked_test_items"],
        "left_out_of_split": id_summary(data.info.get("left_out", []), LEFT_OUT_WHY),
        "moved_to_train": id_summary(data.info.get("moved_to_train", []), MOVED_WHY),
        "validation_source": data.info["validation_source"],
        "validation_is_test": not len(parts["validation"]),
        "validation_size": len(parts["validation"]),
        "selection": chosen,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "recipe": recipe.to_dict(),
        "optimizer": f"{recipe.optimizer}(lr={recipe.learning_rate})",
        "loss": (
            f"binary_crossentropy on extra.{present.field}"
            if present
            else "categorical_crossentropy"
        )
        + (f" (label smoothing {recipe.label_smoothing})" if recipe.label_smoothing else ""),
        "presence": present.describe(data.class_names) if present else None,
        "image_size": list(data.image_size),
        "interpolation": config.interpolation,
        "augment": (config.augment.to_dict() if config.augment and protocol == "honest" else None),
        "backbone": {"name": model_name.removeprefix("transfer-"), "weights": config.weights}
        if config.backbone
        else None,
        "parameters": int(model.count_params()),
        "train_seconds": round(seconds, 1),
        "predictions": rows,
        "keras_version": keras.__version__,
    }
    if protocol == "paper":
        metrics["paper_protocol"] = {
            k: data.info[k]
            for k in ("expand_to", "per_class", "short_of_target", "fixed_split_fields_ignored")
        }

    model.save(out_dir / "model.keras")
    _write_json(out_dir / "history.json", history)
    title = f"{model_name}, {protocol} protocol\n{test_caption(metrics)}"
    metrics["watched"] = (
        f"validation ({len(watched)} items)"
        if len(parts["validation"])
        else f"test ({len(watched)} items, watched only)"
    )
    metrics["watched_baselines"] = baselines(train_part.y, watched.y, data.class_names)
    plot_curves(
        {model_name: history},
        out_dir / "curves.png",
        title=title,
        baselines=metrics["watched_baselines"],
        watched=metrics["watched"],
        selected={model_name: chosen["selected_epoch"]} if chosen["monitor"] else None,
    )
    _write_json(out_dir / "metrics.json", metrics)
    plot_confusion(matrix, data.class_names, out_dir / "confusion.png", title=title)
    plot_reliability(
        metrics["calibration_bins"], metrics["ece"], out_dir / "reliability.png", title
    )
    atomic_write_text(
        out_dir / "predictions.md", predictions_markdown(model_name, rows, data.class_names)
    )
    return RunResult(model=model_name, out_dir=out_dir, metrics=metrics, history=history)


def prepare_model(model: Any, train_y: np.ndarray, num_classes: int, prior_bias: bool) -> None:
    """Start the output layer at the training set's class log-priors (when the model asks).

    A softmax whose bias starts at zero predicts the uniform distribution; the first thing it
    learns is the class prior, and on a small imbalanced set models with a large dropout-fed
    dense head (kecnn, kevgg) sat on that prior for their whole budget (see models.py).
    """
    if not prior_bias:
        return
    counts = np.bincount(train_y, minlength=num_classes).astype(float) + 1.0
    model.layers[-1].bias.assign(np.log(counts / counts.sum()).astype(np.float32))


def with_input_scaling(model: Any, train_x: np.ndarray) -> Any:
    """The model behind a fixed Normalization layer: train's per-channel mean and variance.

    The pixels stay in [0, 1] everywhere else (augmentation, prediction files); the saved model
    carries the scaling, so `acnemodel predict` needs to know nothing about it.
    """
    import keras

    mean = train_x.mean(axis=(0, 1, 2))
    variance = np.maximum(train_x.var(axis=(0, 1, 2)), 1e-6)
    return keras.Sequential(
        [
            keras.Input(model.input_shape[1:]),
            keras.layers.Normalization(mean=mean, variance=variance),
            model,
        ],
        name=f"{model.name}_scaled",
    )


def test_caption(metrics: dict[str, Any]) -> str:
    """'test n=774: comedonal 70, …' — the test size and class counts beside every figure."""
    counts = ", ".join(f"{k} {v}" for k, v in metrics["test_class_counts"].items())
    return f"test n={metrics['test_size']} ({counts})"


def summary_line(result: RunResult) -> str:
    """One line per model for the console."""
    m = result.metrics
    counts = m["split_counts"]
    leak = f", {m['leaked_test_items']} test items leaked" if m["leaked_test_items"] else ""
    out = m.get("left_out_of_split", {}).get("items")
    leak += f", {out} left out of the split (mosaics showing photos on both sides)" if out else ""
    moved = m.get("moved_to_train", {}).get("items")
    leak += f", {moved} moved from test to train (content shared with train)" if moved else ""
    major = m["baselines"]["majority"]["accuracy"]
    return (
        f"{m['model']}: test accuracy {100 * m['test_accuracy']:.2f}% (majority baseline "
        f"{100 * major:.2f}%), balanced accuracy {m['balanced_accuracy']:.3f}, loss "
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
