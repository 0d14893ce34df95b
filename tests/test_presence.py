"""Presence training: the classes an image shows as targets, the label read off by severity."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from manifest_factory import CLASSES, edit_manifest, make_manifest
from typer.testing import CliRunner

from acnemodel.cli import app
from acnemodel.errors import ModelError
from acnemodel.presence import class_probs, plan, presences, severity_order

runner = CliRunner()
# the factory's classes, most severe first, as the planted types below make them
SEVERITY = ["pustular", "papular", "comedonal"]


def item(label: str, types: str | None) -> dict:
    return {"id": label, "label": label, "extra": {} if types is None else {"types": types}}


def test_presences_read_the_listed_classes_and_always_the_label():
    items = [
        item("papular", "papular|comedonal"),
        item("pustular", "comedonal, acne"),
        item("comedonal", None),
    ]
    y = np.array([CLASSES.index(i["label"]) for i in items])
    got = presences(items, list(CLASSES), "types", y)
    # columns: comedonal, papular, pustular; unknown names ("acne") are ignored
    assert got.tolist() == [[1, 1, 0], [1, 0, 1], [1, 0, 0]]


def planted(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Presences whose label is always the most severe present class (order SEVERITY)."""
    rng = np.random.default_rng(seed)
    present = (rng.random((n, 3)) < 0.5).astype(np.float32)
    present[present.sum(axis=1) == 0, 0] = 1
    rank = [SEVERITY.index(c) for c in CLASSES]
    y = np.array([min(np.flatnonzero(row), key=lambda c: rank[c]) for row in present])
    return present, y


def test_the_severity_order_is_learnt_from_which_present_class_is_the_label():
    present, y = planted()
    order, agreement = severity_order(present, y)
    assert [CLASSES[c] for c in order] == SEVERITY
    assert agreement == 1.0


def test_a_rare_most_severe_class_still_ranks_first():
    # the shared export's shape: the most severe class is rare, the next one common and shown
    # with everything below it, so it wins far more items than the rare one does
    rows = [("pustular", "pustular|papular|comedonal")] * 60 + [
        ("papular", "papular|comedonal")
    ] * 20
    rows += [("comedonal", "comedonal")] * 20
    rare = [("nodulocystic", "nodulocystic|pustular")] * 5 + [("nodulocystic", "nodulocystic")] * 5
    classes = ["comedonal", "nodulocystic", "papular", "pustular"]
    items = [item(label, types) for label, types in rows + rare]
    y = np.array([classes.index(i["label"]) for i in items])
    order, agreement = severity_order(presences(items, classes, "types", y), y)
    assert [classes[c] for c in order] == ["nodulocystic", "pustular", "papular", "comedonal"]
    assert agreement == 1.0


def test_class_probabilities_sum_to_one_and_follow_the_most_severe_present_class():
    order = [CLASSES.index(c) for c in SEVERITY]
    p = np.array([[0.9, 0.9, 0.05], [0.9, 0.1, 0.95], [0.2, 0.1, 0.1]])
    probs = class_probs(p, order)
    assert probs.sum(axis=1) == pytest.approx([1, 1, 1])
    assert [CLASSES[k] for k in probs.argmax(axis=1)] == ["papular", "pustular", "comedonal"]


def test_labels_no_order_explains_are_refused_in_one_line():
    present, y = planted()
    y = np.where(np.arange(len(y)) % 3 == 0, np.argmax(present * [3, 2, 1], axis=1), y)
    items = [
        item(CLASSES[k], "|".join(CLASSES[c] for c in np.flatnonzero(r)))
        for k, r in zip(y, present, strict=True)
    ]
    with pytest.raises(ModelError, match="in no order of the classes") as caught:
        plan("types", "honest", None, items, y, list(CLASSES), "m.json")
    assert "\n" not in str(caught.value)


def test_presence_needs_the_honest_protocol_and_the_field():
    _, y = planted()
    items = [item(CLASSES[k], None) for k in y]
    with pytest.raises(ModelError, match=r"only 0 of 60 training items have extra\.types"):
        plan("types", "honest", None, items, y, list(CLASSES), "m.json")
    with pytest.raises(ModelError, match="honest protocol"):
        plan("types", "paper", None, items, y, list(CLASSES), "m.json")


@pytest.fixture(scope="module")
def typed_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The factory's manifest with extra.types: each label and, at random, less severe classes."""
    path = make_manifest(tmp_path_factory.mktemp("presence"), clusters_per_class=6, size=32)
    rng = np.random.default_rng(3)

    def add_types(data: dict) -> None:
        for it in data["items"]:
            rank = SEVERITY.index(it["label"])
            shown = [it["label"]] + [c for c in SEVERITY[rank + 1 :] if rng.random() < 0.5]
            it["extra"] = {"types": "|".join(shown)}

    return edit_manifest(path, add_types)


@pytest.mark.slow
def test_a_presence_run_records_its_order_and_predicts_classes(typed_manifest, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["train", str(typed_manifest), "--out", str(out), "--model", "kecnn", "--epochs", "2",
         "--batch-size", "8", "--presence", "types", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["presence"] == {"field": "types", "severity": SEVERITY, "labels_agreeing": 1.0}
    assert m["loss"].startswith("binary_crossentropy on extra.types")
    image = next((typed_manifest.parent / "images").glob("*.png"))
    got = runner.invoke(app, ["predict", str(out), str(image), "--json"])
    assert got.exit_code == 0, got.output
    probs = json.loads(got.stdout)["predictions"][0]["probabilities"]
    assert set(probs) == set(CLASSES) and sum(probs.values()) == pytest.approx(1, abs=1e-3)


def test_a_field_the_manifest_lacks_is_one_line_before_training(typed_manifest, tmp_path):
    result = runner.invoke(
        app,
        ["train", str(typed_manifest), "--out", str(tmp_path / "r"), "--model", "kecnn",
         "--epochs", "1", "--presence", "lesions", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--presence lesions" in lines[0] and "extra" in lines[0]
