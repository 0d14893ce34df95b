"""Confusion matrix and per-class precision, recall and F1 from integer labels (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def per_class_report(matrix: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """{per_class: {name: {precision, recall, f1, support}}, macro_f1, accuracy}.

    A class never predicted gets precision 0 (not NaN), so the JSON stays plain numbers.
    """
    tp = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    support = matrix.sum(axis=1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    per_class = {
        name: {
            "precision": round(float(precision[k]), 4),
            "recall": round(float(recall[k]), 4),
            "f1": round(float(f1[k]), 4),
            "support": int(support[k]),
        }
        for k, name in enumerate(class_names)
    }
    total = matrix.sum()
    return {
        "per_class": per_class,
        "macro_f1": round(float(f1[support > 0].mean()) if (support > 0).any() else 0.0, 4),
        "accuracy_from_matrix": round(float(tp.sum() / total) if total else 0.0, 4),
    }
