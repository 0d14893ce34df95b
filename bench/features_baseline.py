"""Benchmark: hand-made colour and texture statistics + gradient boosting, on bench/cv.py's folds.

A peer for the CNNs that needs no network at all: per image (and per quadrant, max and min over
the four) Lab/HSV percentiles, Laplacian-of-Gaussian responses at three scales on lightness and
redness, gradient magnitude, a hue-saturation histogram and bright/dark/red spot shares, fed to
scikit-learn's HistGradientBoostingClassifier (class-balanced). Same manifest, folds and seed as
`bench/cv.py`; train and validation parts together train it (it selects no epoch). Prints each
fold's figures, the mean ± sd, and the same figures on a fold's photos and 2×2 mosaics apart.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZE = 128


def stats(a: np.ndarray) -> list[float]:
    a = a.ravel()
    return [a.mean(), a.std(), *np.percentile(a, [5, 25, 50, 75, 95])]


def region_features(img: np.ndarray) -> list[float]:
    """Colour and texture statistics of one uint8 RGB region."""
    import cv2

    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    f: list[float] = []
    for c in range(3):
        f += stats(lab[..., c]) + stats(hsv[..., c])
    lightness, redness = lab[..., 0], lab[..., 1]
    for channel in (lightness, redness):
        for sigma in (1, 2, 4):
            log = cv2.Laplacian(cv2.GaussianBlur(channel, (0, 0), sigma), cv2.CV_32F) * sigma**2
            f += [
                np.abs(log).mean(),
                np.percentile(log, 1),
                np.percentile(log, 99),
                (log > 4).mean(),
                (log < -4).mean(),
            ]
    gx, gy = cv2.Sobel(lightness, cv2.CV_32F, 1, 0), cv2.Sobel(lightness, cv2.CV_32F, 0, 1)
    f += stats(np.hypot(gx, gy))
    hist = cv2.calcHist([hsv.astype(np.uint8)], [0, 1], None, [12, 4], [0, 180, 0, 256]).ravel()
    f += list(hist / hist.sum())
    bright = (lightness > np.percentile(lightness, 97)) & (
        hsv[..., 1] < np.percentile(hsv[..., 1], 30)
    )  # pale heads: pustules, whiteheads
    dark = lightness < np.percentile(lightness, 3)  # open comedones
    red = redness > redness.mean() + 2 * redness.std()
    return [*f, bright.mean(), dark.mean(), red.mean()]


def image_features(pixels: np.ndarray) -> np.ndarray:
    img = np.clip(pixels * 255, 0, 255).astype(np.uint8)
    h, w = img.shape[0] // 2, img.shape[1] // 2
    quads = np.array([region_features(img[i : i + h, j : j + w]) for i in (0, h) for j in (0, w)])
    return np.concatenate([region_features(img), quads.max(axis=0), quads.min(axis=0)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("/tmp/acnemodel-cv"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    from acnedata.dedup.mosaics import find_mosaic_file
    from acnemodel.cv import fold_splits
    from acnemodel.train import TrainConfig

    manifest = args.work / "data" / "manifest.json"
    if not manifest.is_file():
        print(f"{manifest}: no manifest; run bench/cv.py first (it imports the shared set)")
        return 1
    config = TrainConfig(seed=args.seed, image_size=(SIZE, SIZE))
    parts, pixels, _ = fold_splits(manifest, args.folds, config, [(SIZE, SIZE)])
    started = time.perf_counter()
    features = {i: image_features(np.asarray(x)) for i, x in pixels[(SIZE, SIZE)].items()}
    print(
        f"{len(features)} images, {len(next(iter(features.values())))} features, "
        f"{time.perf_counter() - started:.0f} s"
    )
    mosaic = {
        i["id"]: find_mosaic_file(manifest.parent / i["file"]) is not None
        for p in parts[0].values()
        for i in p
    }
    scores: dict[str, list[tuple[float, float, float]]] = {"all": [], "photos": [], "mosaics": []}
    for k, part in enumerate(parts, 1):
        names = sorted({i["label"] for p in part.values() for i in p})
        train = part["train"] + part["validation"]
        model = HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.05, class_weight="balanced", random_state=args.seed
        ).fit(
            np.array([features[i["id"]] for i in train]),
            np.array([names.index(i["label"]) for i in train]),
        )
        test = part["test"]
        y = np.array([names.index(i["label"]) for i in test])
        predicted = model.predict(np.array([features[i["id"]] for i in test]))
        is_mosaic = np.array([mosaic[i["id"]] for i in test])
        majority = np.bincount(y).max() / len(y)
        for subset, mask in (
            ("all", np.ones_like(is_mosaic)),
            ("photos", ~is_mosaic),
            ("mosaics", is_mosaic),
        ):
            yt, pt = y[mask], predicted[mask]
            scores[subset].append(
                (
                    balanced_accuracy_score(yt, pt),
                    f1_score(yt, pt, average="macro"),
                    accuracy_score(yt, pt),
                )
            )
        b, f1, acc = scores["all"][-1]
        print(
            f"fold {k}/{args.folds}: balanced accuracy {b:.3f}, macro F1 {f1:.3f}, accuracy "
            f"{100 * acc:.2f}% (majority {100 * majority:.2f}%), test n={len(y)} "
            f"({int(is_mosaic.sum())} mosaics)"
        )
    for subset, rows in scores.items():
        a = np.array(rows)
        mean, sd = a.mean(axis=0), a.std(axis=0, ddof=1)
        print(
            f"{subset}: balanced accuracy {mean[0]:.3f} ± {sd[0]:.3f}, macro F1 "
            f"{mean[1]:.3f} ± {sd[1]:.3f}, accuracy {100 * mean[2]:.2f}% ± {100 * sd[2]:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
