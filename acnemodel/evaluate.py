"""Test-set figures a reviewer asks for: balanced accuracy, macro-F1, AUROC, ECE, baselines, CIs."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

ECE_BINS = 10
BOOTSTRAP_ROUNDS = 1000


def scores(y: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1, one-vs-rest AUROC."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_recall_fscore_support,
    )

    y = np.asarray(y)
    k = len(class_names)
    predicted = probs.argmax(axis=1)
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    auroc = one_vs_rest_auroc(y, probs, k)
    present = [a for a in auroc if a is not None]
    return {
        "accuracy": round(float(accuracy_score(y, predicted)), 4),
        "balanced_accuracy": round(float(balanced_accuracy_score(y, predicted)), 4),
        "macro_f1": round(
            float(f1_score(y, predicted, labels=labels, average="macro", zero_division=0)), 4
        ),
        "macro_auroc": round(float(np.mean(present)), 4) if present else None,
        "per_class": {
            name: {
                "precision": round(float(precision[c]), 4),
                "recall": round(float(recall[c]), 4),
                "f1": round(float(f1[c]), 4),
                "auroc": None if auroc[c] is None else round(auroc[c], 4),
                "support": int(support[c]),
            }
            for c, name in enumerate(class_names)
        },
    }


def one_vs_rest_auroc(y: np.ndarray, probs: np.ndarray, k: int) -> list[float | None]:
    """AUROC of each class against the rest; None for a class absent from (or alone in) y."""
    from sklearn.metrics import roc_auc_score

    out: list[float | None] = []
    for c in range(k):
        positive = y == c
        if positive.all() or not positive.any():
            out.append(None)
        else:
            out.append(float(roc_auc_score(positive, probs[:, c])))
    return out


def calibration(y: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> dict[str, Any]:
    """Expected calibration error of the top-class confidence over equal-width bins, and the bins.

    ECE = Σ_b (n_b / n) · |accuracy_b - mean confidence_b|; the bins feed the reliability diagram.
    """
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # a confidence of exactly 1.0 belongs in the last bin, not past it
    which = np.minimum(np.digitize(confidence, edges[1:-1], right=True), bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        if n:
            acc, conf = float(correct[mask].mean()), float(confidence[mask].mean())
            ece += n / len(y) * abs(acc - conf)
        else:
            acc = conf = None
        rows.append(
            {"low": float(edges[b]), "high": float(edges[b + 1]), "n": n,
             "accuracy": acc, "confidence": conf}
        )  # fmt: skip
    return {"ece": round(ece, 4) if len(y) else None, "bins": rows}


def baselines(
    train_y: np.ndarray, test_y: np.ndarray, class_names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """What a classifier that never looks at the image scores on this test set, exactly.

    majority: always the class most frequent in train. stratified: a class drawn at random with
    train's class shares — its figures are expectations over the draws (computed, not sampled):
    accuracy Σ p_c q_c, recall of class c p_c, precision of c q_c (p train, q test shares).
    """
    k = len(class_names)
    p = np.bincount(np.asarray(train_y), minlength=k) / max(len(train_y), 1)
    q = np.bincount(np.asarray(test_y), minlength=k) / max(len(test_y), 1)
    present = q > 0
    top = int(p.argmax())
    majority_f1 = np.zeros(k)
    if q[top] > 0:
        majority_f1[top] = 2 * q[top] / (q[top] + 1)  # precision q_top, recall 1
    denom = p + q
    strat_f1 = np.divide(2 * p * q, denom, out=np.zeros(k), where=denom > 0)
    return {
        "majority": {
            "predicts": class_names[top],
            "accuracy": round(float(q[top]), 4),
            "balanced_accuracy": round(float(present[top] / present.sum()), 4),
            "macro_f1": round(float(majority_f1[present].mean()), 4),
        },
        "stratified": {
            "accuracy": round(float((p * q).sum()), 4),
            "balanced_accuracy": round(float(p[present].mean()), 4),
            "macro_f1": round(float(strat_f1[present].mean()), 4),
        },
    }


def bootstrap_intervals(
    y: np.ndarray,
    probs: np.ndarray,
    groups: Sequence[str] | None = None,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> dict[str, Any]:
    """95% percentile intervals for accuracy and balanced accuracy over resampled test sets.

    With `groups`, whole groups are resampled (a cluster bootstrap): items of one upload are not
    independent, and resampling them one by one would give intervals that are too narrow.
    """
    from sklearn.metrics import balanced_accuracy_score

    y = np.asarray(y)
    predicted = probs.argmax(axis=1)
    rng = np.random.default_rng(seed)
    if groups is None:
        members = [np.array([n]) for n in range(len(y))]
    else:
        by_group: dict[str, list[int]] = {}
        for n, g in enumerate(groups):
            by_group.setdefault(g, []).append(n)
        members = [np.array(v) for _, v in sorted(by_group.items())]
    acc, bal = [], []
    with warnings.catch_warnings():
        # a resample missing a class: sklearn warns, the balanced accuracy is still defined
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(rounds):
            pick = rng.integers(0, len(members), len(members))
            idx = np.concatenate([members[k] for k in pick])
            acc.append(float((predicted[idx] == y[idx]).mean()))
            bal.append(float(balanced_accuracy_score(y[idx], predicted[idx])))

    def interval(values: list[float]) -> list[float]:
        low, high = np.percentile(values, [2.5, 97.5])
        return [round(float(low), 4), round(float(high), 4)]

    return {
        "accuracy": interval(acc),
        "balanced_accuracy": interval(bal),
        "rounds": rounds,
        "resampled": "groups" if groups is not None else "items",
        "seed": seed,
    }


def evaluate(
    y: np.ndarray,
    probs: np.ndarray,
    train_y: np.ndarray,
    class_names: Sequence[str],
    groups: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every test figure in one dict: scores, calibration, baselines, bootstrap intervals."""
    out = scores(y, probs, class_names)
    out["calibration"] = calibration(y, probs)
    out["baselines"] = baselines(train_y, y, class_names)
    out["intervals"] = bootstrap_intervals(y, probs, groups, seed=seed)
    out["test_size"] = len(y)
    out["test_class_counts"] = {
        name: int((np.asarray(y) == c).sum()) for c, name in enumerate(class_names)
    }
    return out
