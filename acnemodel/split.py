"""Train/test splits grouped by duplicate cluster (and parent), stratified, seeded; pure Python."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from acnemodel.errors import LeakError

Item = dict[str, Any]
PARTS = ("train", "validation", "test")


def group_keys(items: Sequence[Item]) -> dict[str, str]:
    """Item id → group key: items sharing a cluster, or linked by `parent`, share a group.

    Expanded copies normally carry their parent's cluster already; the parent link also covers
    copies written by other tools that gave them a cluster of their own.
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

    cluster_of = {item["id"]: item["cluster"] for item in items}
    for item in items:
        find(item["cluster"])
        parent = item.get("parent")
        if parent is not None and parent in cluster_of:
            union(item["cluster"], cluster_of[parent])
    return {item["id"]: find(item["cluster"]) for item in items}


def split_items(items: Sequence[Item], test_fraction: float, seed: int) -> dict[str, list[Item]]:
    """Keep fixed `split` fields; split the rest stratified by label and grouped by cluster."""
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
    return out


def random_split(items: Sequence[Item], test_fraction: float, seed: int) -> dict[str, list[Item]]:
    """The paper's split: shuffle everything, cut at the fraction; clusters are ignored."""
    order = list(items)
    random.Random(seed).shuffle(order)
    n_test = round(test_fraction * len(order))
    return {"train": order[n_test:], "validation": [], "test": order[:n_test]}


def spanning_groups(parts: dict[str, list[Item]]) -> dict[str, tuple[int, int]]:
    """Group key → (train count, test count) for groups present on both sides."""
    keys = group_keys([i for part in parts.values() for i in part])
    train = Counter(keys[i["id"]] for i in parts["train"])
    test = Counter(keys[i["id"]] for i in parts["test"])
    return {k: (train[k], test[k]) for k in sorted(train.keys() & test.keys())}


def leaked_test_items(parts: dict[str, list[Item]]) -> int:
    """How many test items have a duplicate or augmented relative in train."""
    keys = group_keys([i for part in parts.values() for i in part])
    train_keys = {keys[i["id"]] for i in parts["train"]}
    return sum(keys[i["id"]] in train_keys for i in parts["test"])


def refuse_leaks(parts: dict[str, list[Item]], where: str) -> None:
    """Raise LeakError naming the first cluster found on both sides of the split."""
    spanning = spanning_groups(parts)
    if spanning:
        key, (n_train, n_test) = next(iter(spanning.items()))
        more = f" (and {len(spanning) - 1} more)" if len(spanning) > 1 else ""
        raise LeakError(
            f"{where}: cluster {key!r} has {n_train} item(s) in train and {n_test} in "
            f"test{more}; refusing to train — give every item of a cluster the same "
            "split"
        )


def _majority_label(members: Sequence[Item]) -> str:
    counts = Counter(m["label"] for m in members)
    best = max(counts.values())
    return min(label for label, n in counts.items() if n == best)
