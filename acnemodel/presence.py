"""Training on the lesion types an image shows: a sigmoid per class, the label read by severity."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from acnemodel.errors import ModelError

if TYPE_CHECKING:
    from acnemodel.data import Item

# Below this share of training items whose label is the most severe of their types by the
# inferred order, the field does not describe the labels, and training on it would not either.
MIN_AGREEMENT = 0.95
_SEPARATORS = re.compile(r"[|,;]")


def presences(items: list[Item], class_names: list[str], field: str, y: np.ndarray) -> np.ndarray:
    """(n, classes) 0/1: the classes each item's `extra[field]` names ("a|b", "a,b" or "a;b"),
    with its own label always among them. Names that are not classes are ignored."""
    index = {name: k for k, name in enumerate(class_names)}
    out = np.zeros((len(items), len(class_names)), np.float32)
    for row, item in enumerate(items):
        value = (item.get("extra") or {}).get(field) or ""
        for name in _SEPARATORS.split(str(value)):
            if name.strip() in index:
                out[row, index[name.strip()]] = 1.0
        out[row, y[row]] = 1.0
    return out


def check_field(items: list[Item], field: str, where: str) -> None:
    """Refuse, in one line, a field that most training items lack."""
    having = sum(bool((i.get("extra") or {}).get(field)) for i in items)
    if having < 0.5 * max(len(items), 1):
        raise ModelError(
            f"{where}: --presence {field}: only {having} of {len(items)} training items have "
            f"extra.{field}; name the manifest column that lists each image's classes "
            "(acnedata import keeps the CSV's columns under extra)"
        )


def severity_order(present: np.ndarray, y: np.ndarray) -> tuple[list[int], float]:
    """(classes most severe first, share of items whose label is their most severe class).

    Learnt from the training items: a class outranks another when, among the items that show
    both, it is the label more often, and outranks what that one outranks. Classes are ranked
    by how many others they outrank so (not by how many items they win: a rare but most severe
    class shows with the others in few items, and may never show with some of them at all).
    """
    k = present.shape[1]
    wins = np.zeros((k, k))
    for row, label in zip(present, y, strict=True):
        wins[label] += row
    np.fill_diagonal(wins, 0)
    beats = wins > wins.T
    for via in range(k):  # transitive closure (Floyd-Warshall on a handful of classes)
        beats |= beats[:, [via]] & beats[[via], :]
    outranks = beats.sum(axis=1)
    net = wins.sum(axis=1) - wins.sum(axis=0)
    order = [int(c) for c in np.lexsort((-net, -outranks))]
    rank = np.empty(k, int)
    rank[order] = np.arange(k)
    top = np.where(present > 0, rank[None, :], k).argmin(axis=1)
    return order, float((top == y).mean()) if len(y) else 1.0


def read_off(p: Any, order: list[int], xp: Any = np) -> Any:
    """Class probabilities from presence probabilities: the most severe present class is the
    label, so P(c) = p(c) × Π(1 - p(more severe)); the least severe takes what is left.
    xp: numpy, or keras.ops inside a model (severity.SeverityHead): the one rule for both."""
    columns: list[Any] = [None] * len(order)
    rest = xp.ones_like(p[:, 0])
    for c in order[:-1]:
        columns[c] = rest * p[:, c]
        rest = rest * (1 - p[:, c])
    columns[order[-1]] = rest
    return xp.stack(columns, axis=1)


def class_probs(p: np.ndarray, order: list[int]) -> np.ndarray:
    """read_off on numpy presences, in float64."""
    return read_off(np.asarray(p, dtype=np.float64), order)


@dataclass(frozen=True)
class PresencePlan:
    """What training on presences needs: the targets, the order that reads a label off them."""

    field: str
    targets: np.ndarray  # (n train, classes) 0/1
    order: list[int]  # classes, most severe first
    agreement: float

    def to_classes(self, p: np.ndarray) -> np.ndarray:
        return class_probs(p, self.order)

    def describe(self, class_names: list[str]) -> dict[str, object]:
        return {
            "field": self.field,
            "severity": [class_names[c] for c in self.order],
            "labels_agreeing": round(self.agreement, 4),
        }


def plan(
    field: str | None,
    protocol: str,
    backbone: str | None,
    train_items: list[Item],
    train_y: np.ndarray,
    class_names: list[str],
    where: str,
) -> PresencePlan | None:
    """The presence plan for a run, or None; refuses, in one line, what it cannot honour."""
    if not field:
        return None
    if protocol != "honest":
        raise ModelError(
            "--presence needs the honest protocol: the paper trained on one label per image"
        )
    if backbone:
        raise ModelError("--presence does not combine with --backbone yet; drop one of the two")
    check_field(train_items, field, where)
    targets = presences(train_items, class_names, field, train_y)
    order, agreement = severity_order(targets, train_y)
    if agreement < MIN_AGREEMENT:
        raise ModelError(
            f"{where}: --presence {field}: in no order of the classes is each label the most "
            f"severe of its item's extra.{field} (at best {agreement:.0%} of the training items); "
            "presence training reads the label off that order, so train without --presence"
        )
    return PresencePlan(field, targets, order, agreement)
