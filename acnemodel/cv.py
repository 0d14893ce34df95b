"""Grouped, stratified K-fold cross-validation: every model on the same folds, mean ± sd."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acnedata.manifest import atomic_write_text
from acnemodel import split
from acnemodel.data import decode_items, decode_parts, open_manifest, to_datasets
from acnemodel.errors import ModelError
from acnemodel.train import TrainConfig, run_name, train_on

FIGURES = ("balanced_accuracy", "macro_f1", "test_accuracy", "macro_auroc", "ece")


def fold_splits(
    manifest_path: str | Path, folds: int, config: TrainConfig, sizes: Sequence[tuple[int, int]]
) -> tuple[list[dict[str, list[dict]]], dict[tuple[int, int], dict[str, np.ndarray]], Any]:
    """The folds (validation carved from each fold's train) and every item decoded per size."""
    manifest = open_manifest(manifest_path)
    if folds < 2:
        raise ModelError(f"--folds {folds}: cross-validation needs at least 2 folds")
    groups = len(set(split.group_keys(manifest.items).values()))
    if groups < folds:
        raise ModelError(f"{manifest.path}: {groups} groups cannot fill {folds} folds")
    parts = [
        split.carve_validation(p, config.validation_fraction, config.seed)
        for p in split.fold_items(manifest.items, folds, config.seed)
    ]
    for k, p in enumerate(parts):
        split.refuse_leaks(p, f"{manifest.path} fold {k + 1}")
    pixels = {
        size: decode_items(manifest, manifest.items, size, config.interpolation) for size in sizes
    }
    return parts, pixels, manifest


def cross_validate(
    manifest: str | Path,
    models: Sequence[str],
    folds: int,
    out: str | Path,
    config: TrainConfig | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train each model on each fold into OUT/fold-<k>/<model>; write OUT/cv.json and cv.md."""
    config = config or TrainConfig()
    if config.protocol != "honest":
        raise ModelError("--folds needs the honest protocol (the paper's split has no groups)")
    names = [run_name(m, config) for m in models]
    sizes = sorted({config.size_for(n) for n in names})
    fold_parts, pixels, source = fold_splits(manifest, folds, config, sizes)
    out_dir = Path(out)
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    fold_info = []
    for k, parts_items in enumerate(fold_parts, 1):
        base = {
            "protocol": "honest",
            "manifest": str(source.path),
            "manifest_sha256": source.sha256(),
            "expanded_copies": 0,
            "leaked_test_items": split.leaked_test_items(parts_items),
            "left_out": [i["id"] for i in split.left_out(source.items, parts_items)],
            "validation_source": f"a grouped, stratified {config.validation_fraction:g} of the "
            "fold's train",
        }
        for name in names:
            size = config.size_for(name)
            prepared = decode_parts(source, parts_items, dict(pixels[size]), size,
                                    config.interpolation, dict(base))  # fmt: skip
            data = to_datasets(
                prepared, size, batch_size=config.batch_size, seed=config.seed, augment=None
            )
            # train_on rebuilds the datasets with the augmentation and the recipe's weighting
            result = train_on(data, name, out_dir / f"fold-{k}" / name, config)
            m = result.metrics
            runs[name].append(m)
            if echo:
                echo(
                    f"fold {k}/{folds} {name}: balanced accuracy {m['balanced_accuracy']:.3f}, "
                    f"macro F1 {m['macro_f1']:.3f}, accuracy {100 * m['test_accuracy']:.2f}% "
                    f"(majority {100 * m['baselines']['majority']['accuracy']:.2f}%), test "
                    f"n={m['test_size']}, epoch {m['selection']['selected_epoch']}/"
                    f"{m['selection']['epochs_run']}, {m['train_seconds']:.0f} s"
                )
        fold_info.append(
            {"fold": k, "test_size": runs[names[0]][-1]["test_size"],
             "test_class_counts": runs[names[0]][-1]["test_class_counts"],
             "baselines": runs[names[0]][-1]["baselines"],
             "leaked_test_items": base["leaked_test_items"],
             "left_out_of_split": len(base["left_out"]),
             "test_ids": [i["id"] for i in parts_items["test"]]}
        )  # fmt: skip
    summary = summarise(runs, fold_info, folds, config)
    summary["manifest"] = str(source.path)
    atomic_write_text(out_dir / "cv.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out_dir / "cv.md", cv_markdown(summary))
    return summary


def mean_sd(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (ddof 1: the folds are a sample of splits)."""
    arr = np.asarray(values, dtype=float)
    sd = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": round(float(arr.mean()), 4), "sd": round(sd, 4)}


def summarise(
    runs: dict[str, list[dict[str, Any]]],
    fold_info: list[dict[str, Any]],
    folds: int,
    config: TrainConfig,
) -> dict[str, Any]:
    """Per model: each figure's mean ± sd and per-fold values; the baselines the same way."""
    models = {}
    for name, metrics in runs.items():
        entry: dict[str, Any] = {}
        for key in FIGURES:
            values = [m[key] for m in metrics if m[key] is not None]
            entry[key] = {**mean_sd(values), "folds": values} if values else None
        major = [m["baselines"]["majority"]["accuracy"] for m in metrics]
        entry["above_majority_every_fold"] = all(
            m["test_accuracy"] > b for m, b in zip(metrics, major, strict=True)
        )
        entry["selected_epochs"] = [m["selection"]["selected_epoch"] for m in metrics]
        entry["train_seconds"] = [m["train_seconds"] for m in metrics]
        entry["recipe"] = metrics[0]["recipe"]
        entry["image_size"] = metrics[0]["image_size"]
        models[name] = entry
    baseline = {
        kind: {
            key: mean_sd([f["baselines"][kind][key] for f in fold_info])
            for key in ("accuracy", "balanced_accuracy", "macro_f1")
        }
        for kind in ("majority", "stratified")
    }
    return {
        "folds": folds,
        "seed": config.seed,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "validation_fraction": config.validation_fraction,
        "fold_info": fold_info,
        "baselines": baseline,
        "models": models,
    }


def _cell(entry: dict[str, float] | None, percent: bool = False) -> str:
    if entry is None:
        return "–"
    if percent:
        return f"{100 * entry['mean']:.2f}% ± {100 * entry['sd']:.2f}"
    return f"{entry['mean']:.3f} ± {entry['sd']:.3f}"


def cv_markdown(summary: dict[str, Any]) -> str:
    """cv.md: one row per model and per baseline, mean ± sd over folds, test sizes per fold."""
    sizes = ", ".join(
        f"{f['test_size']} ({', '.join(f'{c} {n}' for c, n in f['test_class_counts'].items())})"
        for f in summary["fold_info"]
    )
    lines = [
        f"# {summary['folds']}-fold grouped cross-validation (seed {summary['seed']}, up to "
        f"{summary['epochs']} epochs)",
        "",
        f"Test folds (n, class counts): {sizes}.",
        "",
        "| model | balanced accuracy | macro F1 | accuracy | macro AUROC | ECE | "
        "above majority every fold |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in summary["models"].items():
        lines.append(
            f"| {name} | {_cell(e['balanced_accuracy'])} | {_cell(e['macro_f1'])} | "
            f"{_cell(e['test_accuracy'], True)} | {_cell(e['macro_auroc'])} | "
            f"{_cell(e['ece'])} | {'yes' if e['above_majority_every_fold'] else 'no'} |"
        )
    for kind, b in summary["baselines"].items():
        lines.append(
            f"| {kind} baseline | {_cell(b['balanced_accuracy'])} | {_cell(b['macro_f1'])} | "
            f"{_cell(b['accuracy'], True)} | – | – | – |"
        )
    return "\n".join(lines) + "\n"
