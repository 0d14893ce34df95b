"""Several models on one manifest and protocol: Table 4's layout and one figure of all curves."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from acnedata.manifest import atomic_write_text
from acnemodel.report import compare_markdown, plot_curves
from acnemodel.train import (
    RunResult,
    TrainConfig,
    load,
    run_name,
    summary_line,
    test_caption,
    train_on,
)


def compare(
    manifest: str | Path,
    models: Sequence[str],
    out: str | Path,
    config: TrainConfig | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train each model into OUT/<model>; write OUT/table.md, table.json and curves.png.

    Models share one split (same seed) and the decoded pixels per input size, so the five
    predictions shown are of the same test items for every model.
    """
    config = config or TrainConfig()
    for name in models:
        run_name(name, config)  # every name checked before the first model trains
    out_dir = Path(out)
    results: list[RunResult] = []
    for name in models:
        data = load(manifest, name, config)
        result = train_on(data, name, out_dir / name, config)
        results.append(result)
        if echo:
            echo(summary_line(result))

    first = results[0].metrics
    table = {
        "protocol": first["protocol"],
        "manifest": first["manifest"],
        "manifest_sha256": first["manifest_sha256"],
        "seed": config.seed,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "class_names": first["class_names"],
        "split_counts": first["split_counts"],
        "expanded_copies": first["expanded_copies"],
        "leaked_test_items": first["leaked_test_items"],
        "validation_source": first["validation_source"],
        "test_size": first["test_size"],
        "test_class_counts": first["test_class_counts"],
        "baselines": first["baselines"],
        "models": [
            {
                k: r.metrics[k]
                for k in (
                    "model",
                    "test_loss",
                    "test_accuracy",
                    "balanced_accuracy",
                    "macro_f1",
                    "macro_auroc",
                    "ece",
                    "intervals",
                    "selection",
                    "image_size",
                    "parameters",
                    "train_seconds",
                    "predictions",
                )
            }
            for r in results
        ],
    }
    title = (
        f"{first['protocol']} protocol: {first['split_counts']['train']} train / "
        f"{first['split_counts']['test']} test, {config.epochs} epochs, seed {config.seed}\n"
        f"{test_caption(first)}"
    )
    atomic_write_text(out_dir / "table.json", json.dumps(table, indent=2) + "\n")
    atomic_write_text(
        out_dir / "table.md",
        compare_markdown(table["models"], title, first["class_names"], first["baselines"]),
    )
    plot_curves(
        {r.model: r.history for r in results},
        out_dir / "curves.png",
        title=title,
        baselines=first["watched_baselines"],
        watched=first["watched"],
        selected={
            r.model: r.metrics["selection"]["selected_epoch"]
            for r in results
            if r.metrics["selection"]["monitor"]
        },
    )
    return table
