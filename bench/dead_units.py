"""Benchmark: why kecnn and kevgg sat on the majority class — dead ReLUs after the first epochs.

Trains one model on the shared set's honest training part (the validation part carved as
acnemodel does) for a few epochs at a given Adam rate, with pixels in [0, 1] or standardised per
channel, and prints per layer the share of units (channels for a conv) that are zero on every
validation image, and how much the softmax output varies across images (near 0: the network
answers the class prior whatever it sees).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


def report(tag: str, layers: list, x: np.ndarray) -> None:
    import keras

    out = x
    for layer in layers:
        out = np.asarray(layer(out, training=False))
        hidden = isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        if hidden and layer is not layers[-1]:
            units = out.reshape(len(x), -1, out.shape[-1])
            dead = float((units.max(axis=(0, 1)) <= 0).mean())
            print(f"{tag:6} {layer.name:10} dead {dead:.2f}", flush=True)
    print(f"{tag:6} softmax std across images {np.round(out.std(axis=0), 4)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("manifest", type=Path, help="e.g. WORK/data/manifest.json of bench/cv.py")
    parser.add_argument("--model", default="kecnn")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--standardize", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from acnemodel.data import load_dataset
    from acnemodel.models import make_model
    from acnemodel.seeding import seed_everything

    data = load_dataset(args.manifest, (32, 32), seed=args.seed)
    train, val = data.prepared.parts["train"], data.prepared.parts["validation"]
    seed_everything(args.seed)
    inner = make_model(args.model, (32, 32, 3), len(data.class_names))
    model, x = inner, val.x
    if args.standardize:
        mean, std = train.x.mean(axis=(0, 1, 2)), train.x.std(axis=(0, 1, 2))
        norm = keras.layers.Normalization(mean=mean, variance=std**2)
        model = keras.Sequential([keras.Input((32, 32, 3)), norm, inner])
        x = (val.x - mean) / std
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate), loss="categorical_crossentropy"
    )
    print(
        f"{args.model}, Adam {args.learning_rate:g}, "
        f"{'standardised' if args.standardize else '[0, 1]'} input, {len(train)} train / "
        f"{len(val)} validation images"
    )
    report("init", inner.layers, x)
    for epoch in range(1, args.epochs + 1):
        model.fit(data.train, epochs=1, verbose=0)
        report(f"ep{epoch}", inner.layers, x)
    return 0


if __name__ == "__main__":
    sys.exit(main())
