"""Benchmark: 5-fold grouped cross-validation of paper, kecnn, kevgg, strong and kmeans, shared set.

Imports the Roboflow CSV with `acnedata import` (items grouped by upload name), then runs
acnemodel's cross-validation per model (same folds: same seed), and prints balanced accuracy,
macro-F1 and accuracy as mean ± sd with the majority and stratified baselines beside them.
Each model's results land in WORK/<model>/cv.json, so a killed run resumes with --resume.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_DATASET = Path("/work/shared/datasets/acne-roboflow-cc-by-4.0")
# Epoch budgets per model: an upper bound, early stopping on validation usually ends sooner.
DEFAULT_EPOCHS = {"paper": 30, "kecnn": 30, "kevgg": 30, "strong": 30, "kmeans": 30}


def import_manifest(dataset: Path, work: Path, mosaics: str) -> Path:
    """`acnedata import labels.csv` into WORK/data (once): items carry their upload as group.

    Mosaics are kept (`--mosaics group`): three quarters of this export are 2x2 mosaics, and
    without them (the import's default) 462 items remain, too few for 5 folds of a CNN.
    """
    out = work / "data"
    if not (out / "manifest.json").is_file():
        subprocess.run(
            [sys.executable, "-m", "acnedata", "import", str(dataset / "labels.csv"),
             "--out", str(out),
             "--licence", "CC-BY-4.0",
             "--mosaics", mosaics],
            check=True,
        )  # fmt: skip
    return out / "manifest.json"


def run_key(model: str, args: argparse.Namespace) -> str:
    """The folder (under WORK) and table row of one model's run with these settings."""
    key = f"{model}-{args.image_size}" if args.image_size else model
    key = f"{key}-{args.monitor}" if args.monitor else key
    return f"{key}-presence-{args.presence}" if args.presence else key


def run_model(manifest: Path, model: str, args: argparse.Namespace) -> dict[str, Any]:
    from acnemodel.cv import cross_validate
    from acnemodel.train import TrainConfig

    out = args.work / run_key(model, args)
    if args.resume and (out / "cv.json").is_file():
        print(f"{model}: kept {out / 'cv.json'}", flush=True)
        return json.loads((out / "cv.json").read_text(encoding="utf-8"))
    config = TrainConfig(
        epochs=args.epochs or DEFAULT_EPOCHS.get(model, 30),
        seed=args.seed,
        recipe={"patience": args.patience, "monitor": args.monitor},
        image_size=(args.image_size, args.image_size) if args.image_size else None,
        presence=args.presence,
        verbose=0,
    )
    started = time.perf_counter()
    summary = cross_validate(
        manifest, [model], args.folds, out, config, echo=lambda s: print(s, flush=True)
    )
    print(f"{model}: {time.perf_counter() - started:.0f} s", flush=True)
    return summary


def cell(entry: dict[str, float] | None, percent: bool = False) -> str:
    if entry is None:
        return "–"
    if percent:
        return f"{100 * entry['mean']:.2f}% ± {100 * entry['sd']:.2f}"
    return f"{entry['mean']:.3f} ± {entry['sd']:.3f}"


def print_table(summaries: dict[str, dict[str, Any]]) -> None:
    """One table over models, baselines beside them, test folds' sizes and class counts above."""
    first = next(iter(summaries.values()))
    print()
    print(f"{first['folds']}-fold grouped CV, seed {first['seed']}; test folds (n, class counts):")
    for f in first["fold_info"]:
        counts = ", ".join(f"{c} {n}" for c, n in f["test_class_counts"].items())
        print(
            f"  fold {f['fold']}: {f['test_size']} ({counts}); majority "
            f"{100 * f['baselines']['majority']['accuracy']:.2f}%"
        )
    print()
    print(
        "| model | input | epochs (max) | patience | balanced accuracy | macro F1 | accuracy | "
        "macro AUROC | ECE | accuracy > majority on every fold |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, s in summaries.items():
        m = next(iter(s["models"].values()))
        size = "×".join(str(v) for v in m["image_size"])
        folds = ", ".join(f"{100 * v:.1f}" for v in m["test_accuracy"]["folds"])
        print(
            f"| {name} | {size} | {s['epochs']} | {m['recipe']['patience']} | "
            f"{cell(m['balanced_accuracy'])} | "
            f"{cell(m['macro_f1'])} | {cell(m['test_accuracy'], True)} | "
            f"{cell(m['macro_auroc'])} | {cell(m['ece'])} | "
            f"{'yes' if m['above_majority_every_fold'] else 'no'} ({folds}) |"
        )
    for kind, b in first["baselines"].items():
        print(
            f"| {kind} baseline | – | – | – | {cell(b['balanced_accuracy'])} | "
            f"{cell(b['macro_f1'])} | {cell(b['accuracy'], True)} | – | – | – |"
        )
    print()
    for name, s in summaries.items():
        m = next(iter(s["models"].values()))
        print(
            f"{name}: per fold balanced accuracy {m['balanced_accuracy']['folds']}, macro F1 "
            f"{m['macro_f1']['folds']}, selected epochs {m['selected_epochs']}, "
            f"train seconds {m['train_seconds']}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/acnemodel-cv"), help="outside the repository"
    )
    parser.add_argument("--models", default="strong,kmeans,kecnn,kevgg,paper")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="default: per model, see top")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=None, help="default: the model's recipe")
    parser.add_argument("--resume", action="store_true", help="keep models with a cv.json")
    parser.add_argument(
        "--monitor", default=None, help="the validation score that picks the epoch (the recipe's)"
    )
    parser.add_argument(
        "--image-size", type=int, default=None, help="input side in px (default: the model's)"
    )
    parser.add_argument("--mosaics", default="group", choices=["group", "exclude"])
    parser.add_argument(
        "--presence",
        default=None,
        help="train on the classes in extra.FIELD (the export's `types` column), label by severity",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="train nothing: print from WORK/*/cv.json"
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.report_only:
        keys = [run_key(n, args) for n in names]
        summaries = {
            k: json.loads((args.work / k / "cv.json").read_text(encoding="utf-8"))
            for k in keys
            if (args.work / k / "cv.json").is_file()
        }
    else:
        manifest = import_manifest(args.dataset, args.work, args.mosaics)
        print(f"manifest: {manifest}", flush=True)
        summaries = {run_key(n, args): run_model(manifest, n, args) for n in names}
    if summaries:
        print_table(summaries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
