"""acnemodel evaluation: figures against hand counts, baselines, intervals, the carve, folds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from manifest_factory import make_manifest

from acnedata.manifest import load_manifest
from acnemodel import split
from acnemodel.evaluate import baselines, bootstrap_intervals, calibration, evaluate, scores
from acnemodel.report import curves_figure

NAMES = ["a", "b", "c"]


def probs_for(predicted: list[int], confidence: list[float], k: int = 3) -> np.ndarray:
    """Rows whose argmax is `predicted` with that top probability, the rest spread evenly."""
    out = np.zeros((len(predicted), k))
    for n, (p, c) in enumerate(zip(predicted, confidence, strict=True)):
        out[n] = (1 - c) / (k - 1)
        out[n, p] = c
    return out


def test_scores_match_hand_counts() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    pred = [0, 0, 0, 1, 1, 2, 2, 2]
    s = scores(y, probs_for(pred, [0.9] * 8), NAMES)
    assert s["accuracy"] == pytest.approx(6 / 8, abs=1e-4)
    # recalls 3/4, 1/2, 2/2 → balanced accuracy their mean
    assert s["balanced_accuracy"] == pytest.approx((0.75 + 0.5 + 1.0) / 3, abs=1e-4)
    assert s["per_class"]["a"]["recall"] == 0.75 and s["per_class"]["c"]["recall"] == 1.0
    # F1: a: p 1, r .75 → 6/7; b: p .5, r .5 → .5; c: p 2/3, r 1 → .8
    assert s["macro_f1"] == pytest.approx((6 / 7 + 0.5 + 0.8) / 3, abs=1e-4)
    assert s["per_class"]["b"]["support"] == 2
    assert 0 <= s["macro_auroc"] <= 1 and s["per_class"]["a"]["auroc"] is not None


def test_auroc_one_vs_rest_is_exact_on_a_ranking() -> None:
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    s = scores(y, probs, ["x", "y"])
    # class 0 scores: positives .9 .6, negatives .7 .2 → 3 of 4 pairs ordered right
    assert s["per_class"]["x"]["auroc"] == 0.75 and s["per_class"]["y"]["auroc"] == 0.75


def test_ece_and_bins_by_hand() -> None:
    y = np.array([0, 0, 0, 0])
    # two at 0.95 (one right), two at 0.55 (both right)
    probs = probs_for([0, 1, 0, 0], [0.95, 0.95, 0.55, 0.55])
    cal = calibration(y, probs)
    # bin (0.9, 1]: accuracy .5, confidence .95; bin (0.5, 0.6]: accuracy 1, confidence .55
    assert cal["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.45, abs=1e-4)
    full = [b for b in cal["bins"] if b["n"]]
    assert [b["n"] for b in full] == [2, 2]
    assert full[0]["accuracy"] == 1.0 and full[1]["accuracy"] == 0.5
    assert sum(b["n"] for b in cal["bins"]) == 4


def test_a_confidence_of_one_lands_in_the_last_bin() -> None:
    cal = calibration(np.array([0]), np.array([[1.0, 0.0]]))
    assert cal["bins"][-1]["n"] == 1 and cal["ece"] == 0.0


def test_baselines_are_exact_expectations() -> None:
    train_y = np.array([0] * 6 + [1] * 3 + [2] * 1)  # shares .6 .3 .1
    test_y = np.array([0] * 5 + [1] * 3 + [2] * 2)  # shares .5 .3 .2
    b = baselines(train_y, test_y, NAMES)
    assert b["majority"]["predicts"] == "a"
    assert b["majority"]["accuracy"] == 0.5
    assert b["majority"]["balanced_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    # majority F1: class a precision .5, recall 1 → 2/3; others 0
    assert b["majority"]["macro_f1"] == pytest.approx((2 / 3) / 3, abs=1e-4)
    assert b["stratified"]["accuracy"] == pytest.approx(0.6 * 0.5 + 0.3 * 0.3 + 0.1 * 0.2)
    assert b["stratified"]["balanced_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    # a simulation of the stratified guesser agrees with the computed expectation
    rng = np.random.default_rng(0)
    guesses = rng.choice(3, size=(4000, len(test_y)), p=[0.6, 0.3, 0.1])
    assert (guesses == test_y).mean() == pytest.approx(b["stratified"]["accuracy"], abs=0.01)


def test_bootstrap_intervals_bracket_the_estimate_and_widen_with_groups() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.7, y, (y + 1) % 3)
    probs = probs_for(list(pred), [0.8] * 300)
    acc = float((pred == y).mean())
    items = bootstrap_intervals(y, probs, rounds=400, seed=0)
    low, high = items["accuracy"]
    assert low < acc < high and high - low < 0.2
    assert items["resampled"] == "items"
    # 30 groups of 10 identical outcomes: far fewer independent units, a wider interval
    groups = [f"g{n // 10}" for n in range(300)]
    pred_g = np.repeat(np.where(rng.random(30) < 0.7, 0, 1), 10)
    probs_g = probs_for(list(pred_g), [0.8] * 300, k=2)
    y_g = np.zeros(300, int)
    by_item = bootstrap_intervals(y_g, probs_g, rounds=400, seed=0)
    by_group = bootstrap_intervals(y_g, probs_g, groups, rounds=400, seed=0)
    width = lambda r: r["accuracy"][1] - r["accuracy"][0]  # noqa: E731
    assert by_group["resampled"] == "groups" and width(by_group) > 2 * width(by_item)


def test_evaluate_carries_test_size_and_counts() -> None:
    y = np.array([0, 1, 2, 2])
    out = evaluate(y, probs_for([0, 1, 2, 0], [0.7] * 4), np.array([2, 2, 1, 0]), NAMES)
    assert out["test_size"] == 4 and out["test_class_counts"] == {"a": 1, "b": 1, "c": 2}
    assert {"majority", "stratified"} <= out["baselines"].keys()
    assert {"accuracy", "balanced_accuracy"} <= out["intervals"].keys()


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    path = make_manifest(tmp_path_factory.mktemp("eval"), clusters_per_class=10)
    return load_manifest(path).items


def test_validation_is_carved_from_train_by_group(items: list[dict]) -> None:
    parts = split.split_items(items, 0.3, seed=0)
    carved = split.carve_validation(parts, 0.2, seed=0)
    assert carved["test"] == parts["test"]  # test untouched
    assert {i["id"] for i in carved["train"] + carved["validation"]} == {
        i["id"] for i in parts["train"]
    }
    assert carved["validation"] and carved["train"]
    cluster_side = {}
    for side in ("train", "validation"):
        for i in carved[side]:
            assert cluster_side.setdefault(i["cluster"], side) == side  # a group stays whole
    # stratified: every class is in validation
    assert {i["label"] for i in carved["validation"]} == {i["label"] for i in items}
    assert split.refuse_leaks(carved, "m") is None


def test_fixed_validation_items_are_kept(items: list[dict]) -> None:
    parts = {"train": items[:20], "validation": items[20:25], "test": items[25:]}
    assert split.carve_validation(parts, 0.2, seed=0) is parts


def test_folds_cover_every_item_once_and_keep_groups(items: list[dict]) -> None:
    folds = split.fold_items(items, 3, seed=0)
    assert len(folds) == 3
    tested = Counter(i["id"] for f in folds for i in f["test"])
    assert set(tested) == {i["id"] for i in items} and set(tested.values()) == {1}
    for f in folds:
        assert split.leaked_test_items(f) == 0
        assert len(f["train"]) + len(f["test"]) == len(items)
        assert {i["label"] for i in f["test"]} == {i["label"] for i in items}  # stratified
    again = split.fold_items(items, 3, seed=0)
    assert [[i["id"] for i in f["test"]] for f in again] == [
        [i["id"] for i in f["test"]] for f in folds
    ]


def test_curves_have_a_full_accuracy_axis_and_baseline_lines(tmp_path: Path) -> None:
    history = {"loss": [1.2, 1.19], "accuracy": [0.47, 0.48], "val_accuracy": [0.46, 0.47]}
    base = {"majority": {"accuracy": 0.463}, "stratified": {"accuracy": 0.31}}
    fig = curves_figure({"kecnn": history}, "t", base)
    ax_loss, ax_acc = fig.axes
    assert ax_acc.get_ylim() == (0.0, 1.0)  # a flat model looks flat
    flat = sorted(
        line.get_ydata()[0] for line in ax_acc.get_lines() if len(set(line.get_ydata())) == 1
    )
    assert flat == [0.31, 0.463]
    labels = [t.get_text() for t in ax_acc.get_legend().get_texts()]
    assert any("majority baseline" in t for t in labels)
    assert ax_loss.get_ylim()[0] == 0.0
