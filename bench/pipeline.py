"""Benchmark: training images/s — augmented tf.data vs plain fit vs legacy ImageDataGenerator."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table4 import DEFAULT_DATASET, build_manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--work", type=Path, default=None, help="manifest folder (default: temp)")
    parser.add_argument("--model", default="kecnn")
    parser.add_argument(
        "--rounds", type=int, default=6, help="timed epochs per setup, interleaved setup by setup"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras
    import tensorflow as tf

    from acnemodel.augment import AugmentConfig
    from acnemodel.data import load_dataset
    from acnemodel.models import get_spec, make_model
    from acnemodel.seeding import seed_everything

    work = args.work or Path(tempfile.mkdtemp(prefix="acnemodel-pipeline-"))
    manifest = build_manifest(args.dataset, work)
    size = get_spec(args.model).image_size
    knobs = AugmentConfig()  # the defaults `acnemodel train` uses
    data = load_dataset(manifest, size, seed=args.seed, batch_size=args.batch_size, augment=None)
    train = data.prepared.parts["train"]
    x, n, bs = train.x, len(train), args.batch_size
    y = np.eye(len(data.class_names), dtype=np.float32)[train.y]

    try:  # Keras 3 still ships the legacy generator, under keras.src.legacy
        from tensorflow.keras.preprocessing.image import ImageDataGenerator
    except ImportError:
        ImageDataGenerator = None

    def augmented(engine: str) -> Any:
        config = replace(knobs, engine=engine)
        return load_dataset(manifest, size, seed=args.seed, batch_size=bs, augment=config).train

    feeds: dict[str, Callable[[], tuple[Any, dict[str, Any]]]] = {
        "plain fit (cached arrays, no augmentation)": lambda: (
            x,
            {"y": y, "batch_size": bs, "shuffle": True},
        ),
        "acnemodel tf.data + augmentation (affine, default)": lambda: (
            augmented("affine"),
            {"shuffle": False},
        ),  # the dataset shuffles itself, seeded
        "acnemodel tf.data + augmentation (6 Keras layers)": lambda: (
            augmented("layers"),
            {"shuffle": False},
        ),
    }
    if ImageDataGenerator is not None:

        def legacy() -> tuple[Any, dict[str, Any]]:
            gen = ImageDataGenerator(
                rotation_range=knobs.rotation_range,
                width_shift_range=knobs.width_shift_range,
                height_shift_range=knobs.height_shift_range,
                shear_range=knobs.shear_range,
                zoom_range=knobs.zoom_range,
                horizontal_flip=knobs.horizontal_flip,
                vertical_flip=knobs.vertical_flip,
                fill_mode=knobs.fill_mode,
            )
            return gen.flow(x, y, batch_size=bs, shuffle=True, seed=args.seed), {}

        feeds["legacy ImageDataGenerator.flow (same knobs)"] = legacy

    # one model per setup, same architecture and initial weights; the first epoch of each
    # (tracing, warm-up) is not timed; then one epoch per setup in turn, so that load from
    # other processes on the machine falls on every setup alike
    runs = {}
    for name, feed in feeds.items():
        seed_everything(args.seed)
        model = make_model(args.model, (*size, 3), len(data.class_names))
        model.compile(
            optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy", metrics=["accuracy"]
        )
        source, kwargs = feed()
        model.fit(source, epochs=1, verbose=0, **kwargs)
        runs[name] = (model, source, kwargs)
    # wall time is what a user waits for; CPU time (all threads of this process) is what the
    # setup costs, and is far less disturbed by other processes on a shared machine
    rates: dict[str, list[float]] = {name: [] for name in runs}
    cpu_rates: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, (model, source, kwargs) in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(source, epochs=1, verbose=0, **kwargs)
            rates[name].append(n / (time.perf_counter() - wall))
            cpu_rates[name].append(n / (time.process_time() - cpu))
        print(f"round {r + 1}: " + ", ".join(f"{v[-1]:.0f}" for v in rates.values()), flush=True)

    best = {name: statistics.median(v) for name, v in rates.items()}
    per_cpu = {name: statistics.median(v) for name, v in cpu_rates.items()}
    print(
        f"\n{args.model} at {size[0]}×{size[1]}, {n} training images, batch {bs}, median of "
        f"{args.rounds} interleaved epochs per setup, {os.cpu_count()} CPUs, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )
    plain_key = "plain fit (cached arrays, no augmentation)"
    print("| setup | images/s (wall) | vs plain fit | images per CPU-second | vs plain fit |")
    print("|---|---|---|---|---|")
    for name in best:
        print(
            f"| {name} | {best[name]:.0f} | {best[name] / best[plain_key]:.2f} | "
            f"{per_cpu[name]:.0f} | {per_cpu[name] / per_cpu[plain_key]:.2f} |"
        )
    print()
    legacy_key = "legacy ImageDataGenerator.flow (same knobs)"
    for label, table in (("wall", best), ("CPU", per_cpu)):
        for engine in ("affine, default", "6 Keras layers"):
            aug = table[f"acnemodel tf.data + augmentation ({engine})"]
            ratio = aug / table[plain_key]
            line = (
                f"[{label}, {engine}] augmented / plain fit: {ratio:.2f} (target ≥ 0.90: "
                f"{'met' if ratio >= 0.9 else 'missed'})"
            )
            if legacy_key in table:
                ratio = aug / table[legacy_key]
                line += (
                    f"; augmented / ImageDataGenerator: {ratio:.2f}× (target ≥ 1.3×: "
                    f"{'met' if ratio >= 1.3 else 'missed'})"
                )
            else:
                line += "; ImageDataGenerator is not available in this Keras"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
