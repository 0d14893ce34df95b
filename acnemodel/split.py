"""Train/test splits grouped by content group (and cluster, parent), stratified, seeded."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from acnemodel.errors import LeakError
from acnemodel.straddle import leave_out_straddlers

Item = dict[str, Any]
PARTS = ("train", "validation", "test")


def group_keys(items: Sequence[Item]) -> dict[str, str]:
    """Item id → group key: items sharing a `group`, a cluster, or linked by `parent`, share one.

    An item without `group` (a manifest of schema 1.0) stands for its cluster. Expanded copies
    normally carry their parent's group and cluster already; the parent link also covers copies
    written by other tools that gave them ones of their own. The key is the smallest `group`
    in the set, or its smallest cluster when none has a group, so it does not depend on order.
    """
    root: dict[str, str] = {}

    def find(node: str) -> str:
        root.setdefault(node, node)
        while root[node] != node:
            root[node] = root[root[node]]  # path halving keeps the chains short
            node = root[node]
        return node

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            # the smaller name wins so the group key does not depend on item order
            root[max(ra, rb)] = min(ra, rb)

    node_of = {item["id"]: "c:" + item["cluster"] for item in items}
    for item in items:
        find(node_of[item["id"]])
        if item.get("group"):
            union(node_of[item["id"]], "g:" + item["group"])
        parent = item.get("parent")
        if parent is not None and parent in node_of:
            union(node_of[item["id"]], node_of[parent])
    # root → its key: the smallest group in the set, else (a 1.0 manifest) the smallest cluster
    best: dict[str, tuple[int, str]] = {}
    for item in items:
        top = find(node_of[item["id"]])
        mine = (0, item["group"]) if item.get("group") else (1, item["cluster"])
        best[top] = min(best.get(top, mine), mine)
    return {item["id"]: best[find(node_of[item["id"]])][1] for item in items}


def split_items(items: Sequence[Item], test_fraction: float, seed: int) -> dict[str, list[Item]]:
    """Keep fixed `split` fields; split the rest stratified by label and grouped by group.

    Items whose `links` (a mosaic under [dedup] mosaics = "follow") would cross two parts are
    left out of every part; `left_out` names them.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be between 0 and 1, not {test_fraction}")
    keys = group_keys(items)
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[keys[item["id"]]].append(item)

    assigned: dict[str, str] = {}  # group key → part, for groups without fixed split fields
    free_by_label: dict[str, list[str]] = defaultdict(list)
    for key in sorted(groups):
        members = groups[key]
        if not any("split" in m for m in members):
            free_by_label[_majority_label(members)].append(key)

    rng = random.Random(seed)
    for label in sorted(free_by_label):
        keys_for_label = free_by_label[label]
        rng.shuffle(keys_for_label)
        total = sum(len(groups[k]) for k in keys_for_label)
        target = round(test_fraction * total)
        in_test = 0
        for key in keys_for_label:
            size = len(groups[key])
            # a group goes to test while that brings the test count closer to the target
            if in_test + size / 2 < target:
                assigned[key] = "test"
                in_test += size
            else:
                assigned[key] = "train"
        parts = [assigned[k] for k in keys_for_label]
        if target > 0 and len(parts) >= 2 and "test" not in parts:
            assigned[keys_for_label[0]] = "test"  # tiny class: one group still tests it
        if parts and "train" not in [assigned[k] for k in keys_for_label]:
            assigned[keys_for_label[-1]] = "train"  # never leave a class with nothing to learn

    out: dict[str, list[Item]] = {part: [] for part in PARTS}
    for item in items:
        key = keys[item["id"]]
        if "split" in item:
            part = item["split"]
        elif key in assigned:
            part = assigned[key]
        else:
            # unfixed member of a group with fixed members follows them, train first
            fixed = {m["split"] for m in groups[key] if "split" in m}
            part = next(p for p in PARTS if p in fixed)
        out[part].append(item)
    return leave_out_straddlers(out)[0]


def left_out(items: Sequence[Item], parts: dict[str, list[Item]]) -> list[Item]:
    """The items in no part: mosaics that show photos on two sides (straddle.py)."""
    placed = {i["id"] for part in parts.values() for i in part}
    return [i for i in items if i["id"] not in placed]


def random_split(items: Sequence[Item], test_fraction: float, seed: int) -> dict[str, list[Item]]:
    """The paper's split: shuffle everything, cut at the fraction; groups are ignored."""
    order = list(items)
    random.Random(seed).shuffle(order)
    n_test = round(test_fraction * len(order))
    return {"train": order[n_test:], "validation": [], "test": order[:n_test]}


def spanning_groups(parts: dict[str, list[Item]]) -> dict[str, tuple[int, int]]:
    """Group key → (train count, test count) for groups present on both sides."""
    return {key: (len(a), len(b)) for key, (a, b) in _spanning(parts).items()}


def _spanning(parts: dict[str, list[Item]]) -> dict[str, tuple[list[Item], list[Item]]]:
    """Group key → (its train items, its test items) for groups present on both sides."""
    keys = group_keys([i for part in parts.values() for i in part])
    train: dict[str, list[Item]] = defaultdict(list)
    test: dict[str, list[Item]] = defaultdict(list)
    for item in parts["train"]:
        train[keys[item["id"]]].append(item)
    for item in parts["test"]:
        test[keys[item["id"]]].append(item)
    return {k: (train[k], test[k]) for k in sorted(train.keys() & test.keys())}


def group_leaked_ids(parts: dict[str, list[Item]]) -> set[str]:
    """Ids of the test items whose group has an item in train."""
    keys = group_keys([i for part in parts.values() for i in part])
    train_keys = {keys[i["id"]] for i in parts["train"]}
    return {i["id"] for i in parts["test"] if keys[i["id"]] in train_keys}


def leaked_test_items(parts: dict[str, list[Item]]) -> int:
    """How many test items share a group (content, provenance, duplicate, parent) with train."""
    keys = group_keys([i for part in parts.values() for i in part])
    train_keys = {keys[i["id"]] for i in parts["train"]}
    return sum(keys[i["id"]] in train_keys for i in parts["test"])


def refuse_leaks(parts: dict[str, list[Item]], where: str) -> None:
    """Raise LeakError naming the first group found on both sides, with an item on each side."""
    spanning = _spanning(parts)
    if spanning:
        key, (in_train, in_test) = next(iter(spanning.items()))
        more = f" (and {len(spanning) - 1} more)" if len(spanning) > 1 else ""
        raise LeakError(
            f"{where}: group {key!r} has {len(in_train)} item(s) in train (e.g. "
            f"{in_train[0]['id']!r}) and {len(in_test)} in test (e.g. {in_test[0]['id']!r})"
            f"{more}; refusing to train — give every item of a group the same split"
        )


def _majority_label(members: Sequence[Item]) -> str:
    counts = Counter(m["label"] for m in members)
    best = max(counts.values())
    return min(label for label, n in counts.items() if n == best)


def carve_validation(
    parts: dict[str, list[Item]], fraction: float, seed: int
) -> dict[str, list[Item]]:
    """Move a grouped, stratified `fraction` of train into validation, unless it has items.

    The carve uses the same grouping as the train/test split (a group stays whole), so a
    validation score is as honest as a test score; train items' own `split: train` fields are
    ignored for the carve, since they only say "not test". A different seed from the test split
    keeps the two draws independent.
    """
    if parts["validation"] or not parts["train"] or fraction <= 0:
        return parts
    free = [{k: v for k, v in item.items() if k != "split"} for item in parts["train"]]
    carved = split_items(free, fraction, seed + 1)  # leaves out mosaics across the carve
    held = {item["id"] for item in carved["test"]}
    trained = {item["id"] for item in carved["train"]}
    return {
        "train": [i for i in parts["train"] if i["id"] in trained],
        "validation": [i for i in parts["train"] if i["id"] in held],
        "test": parts["test"],
    }


def fold_items(items: Sequence[Item], folds: int, seed: int) -> list[dict[str, list[Item]]]:
    """K grouped, stratified folds (scikit-learn's StratifiedGroupKFold on the group keys).

    Each fold's test part is one fold; its train part the rest (validation is carved later).
    Fixed `split` fields are ignored: cross-validation rotates every item through test.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    keys = group_keys(items)
    groups = [keys[i["id"]] for i in items]
    labels = [i["label"] for i in items]
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    out = []
    for train_idx, test_idx in splitter.split(list(range(len(items))), labels, groups):
        fold = {
            "train": [items[k] for k in train_idx],
            "validation": [],
            "test": [items[k] for k in test_idx],
        }
        out.append(leave_out_straddlers(fold)[0])
    return out
