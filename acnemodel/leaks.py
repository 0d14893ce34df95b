"""Content leak audit of a split: test items that share a region with a train item."""

from __future__ import annotations

from typing import Any

from acnedata.audit import Leak, audit_paths
from acnedata.manifest import Manifest
from acnemodel.errors import LeakError
from acnemodel.straddle import leave_out_straddlers

Item = dict[str, Any]
SHOWN = 3  # pairs named in a refusal


def content_leaks(manifest: Manifest, parts: dict[str, list[Item]]) -> list[Leak]:
    """(test, train) pairs that share content, by acnedata's region matcher, with item ids in
    place of paths. Copies made by acnemodel (with a `parent`) are left to the group check:
    they are linked to their parent already, and auditing thousands of them would be slow."""
    train = [i for i in parts["train"] if "parent" not in i]
    test = [i for i in parts["test"] if "parent" not in i]
    if not train or not test:
        return []
    leaks = audit_paths(
        [manifest.file_path(i) for i in train], [manifest.file_path(i) for i in test]
    )
    by_path = {str(manifest.file_path(i)): i["id"] for i in train + test}
    return [
        Leak(
            by_path[leak.test],
            by_path[leak.train],
            leak.relation,
            leak.area_test,
            leak.area_train,
            leak.inliers,
        )
        for leak in leaks
    ]


def leave_out_leaking_mosaics(
    parts: dict[str, list[Item]], leaks: list[Leak]
) -> tuple[dict[str, list[Item]], list[Leak]]:
    """Leave out of the split the mosaics among `leaks`; return the parts and the leaks left.

    The audit matches test against train without the import's corroboration, so it can find a
    tile the import did not link. A mosaic (`mosaic` field, kept by [dedup] mosaics = "follow"
    or "group") on such a pair is left out as a straddling one would be; a leak between two
    photos stays, for the refusal to name.
    """
    by_id = {i["id"]: i for part in parts.values() for i in part}
    extra: dict[str, set[str]] = {}
    for leak in leaks:
        if by_id[leak.test].get("mosaic") or by_id[leak.train].get("mosaic"):
            extra.setdefault(leak.test, set()).add(leak.train)
            extra.setdefault(leak.train, set()).add(leak.test)
    if not extra:
        return parts, leaks
    linked = {
        name: [
            {**i, "links": sorted({*i.get("links", ()), *extra[i["id"]]})}
            if i["id"] in extra
            else i
            for i in part
        ]
        for name, part in parts.items()
    }
    _, out = leave_out_straddlers(linked)
    gone = {i["id"] for i in out}
    kept = {name: [i for i in part if i["id"] not in gone] for name, part in parts.items()}
    return kept, [leak for leak in leaks if leak.test not in gone and leak.train not in gone]


def leaked_ids(parts: dict[str, list[Item]], group_leaked: set[str], leaks: list[Leak]) -> int:
    """Test items that share a group or any content with train."""
    return len(group_leaked | {leak.test for leak in leaks})


def refuse_content_leaks(leaks: list[Leak], where: str) -> None:
    """Raise LeakError naming the first pairs when test items share content with train."""
    if not leaks:
        return
    tests = len({leak.test for leak in leaks})
    shown = "; ".join(leak.line() for leak in leaks[:SHOWN])
    more = f" (+{len(leaks) - SHOWN} more pairs)" if len(leaks) > SHOWN else ""
    raise LeakError(
        f"{where}: {tests} test item(s) share content with train: {shown}{more}; refusing to "
        "train — their `split` fields fix them on two sides: give each pair one split in the "
        "manifest, or pass --allow-leaks to train anyway"
    )
