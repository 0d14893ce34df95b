"""An honest split made leak-free by what the content audit finds: mosaics out, groups moved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from acnedata.audit import Leak
from acnedata.manifest import Manifest
from acnemodel import leaks as leak_audit
from acnemodel.split import group_keys

Item = dict[str, Any]
Parts = dict[str, list[Item]]
# Moving a group to train can put it beside a test item it shares content with (the two were
# both in test, where nothing compared them); each round audits what moved against test.
ROUNDS = 4


@dataclass
class Repair:
    """What the audit made of a split: its parts, the leaks left, and the items it moved."""

    parts: Parts
    leaks: list[Leak]
    moved_to_train: list[str] = field(default_factory=list)


def repair_split(
    manifest: Manifest,
    parts: Parts,
    leaks: list[Leak],
) -> Repair:
    """Leave out the mosaics among `leaks`; move to train each test group (by group_keys) that
    shares content with train, unless one of its items has a fixed `split`.

    The leaks that remain (fixed splits on both sides) are for the refusal to name: a split the
    dataset fixed is the dataset's to change, while one acnemodel drew it can draw again.
    """
    moved: list[str] = []
    for _ in range(ROUNDS):
        parts, leaks = leak_audit.leave_out_leaking_mosaics(parts, leaks)
        everything = [i for part in parts.values() for i in part]
        keys = group_keys(everything)
        fixed = {keys[i["id"]] for i in everything if "split" in i}
        going = {keys[leak.test] for leak in leaks if keys[leak.test] not in fixed}
        if not going:
            break
        moving = [i for i in parts["test"] if keys[i["id"]] in going]
        gone = {i["id"] for i in moving}
        parts = {
            **parts,
            "train": [*parts["train"], *moving],
            "test": [i for i in parts["test"] if i["id"] not in gone],
        }
        moved += sorted(gone)
        fresh = leak_audit.content_leaks(
            manifest, {"train": moving, "validation": [], "test": parts["test"]}
        )
        leaks = [leak for leak in leaks if leak.test not in gone] + fresh
    parts, leaks = leak_audit.leave_out_leaking_mosaics(parts, leaks)  # after the last round
    return Repair(parts, leaks, moved)
