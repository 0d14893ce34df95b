"""Items whose content links cross a split (mosaics under [dedup] mosaics = "follow"): left out."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

Item = dict[str, Any]


def cross_links(parts: Mapping[str, Sequence[Item]]) -> list[tuple[str, str]]:
    """(a, b) id pairs, a < b, whose items' `links` join two different parts."""
    side = {item["id"]: name for name, items in parts.items() for item in items}
    pairs = set()
    for name, items in parts.items():
        for item in items:
            for other in item.get("links", ()):
                if other in side and side[other] != name:
                    pairs.add((min(item["id"], other), max(item["id"], other)))
    return sorted(pairs)


def leave_out_straddlers(
    parts: Mapping[str, Sequence[Item]],
) -> tuple[dict[str, list[Item]], list[Item]]:
    """The parts without the fewest items that leave no link across two parts, and those items.

    A link joins a mosaic and a photo it shows (or two mosaics that show one photo): both
    ends on one side is fine, across two is a leak. Greedy vertex cover of the crossing links:
    the item on the most of them goes first, a mosaic (`mosaic` field) before anything else,
    so the photos stay; ties go to the smaller id, so the result does not depend on order.
    """
    crossing = cross_links(parts)
    if not crossing:
        return {name: list(items) for name, items in parts.items()}, []
    by_id = {item["id"]: item for items in parts.values() for item in items}
    touching: dict[str, set[str]] = defaultdict(set)
    for a, b in crossing:
        touching[a].add(b)
        touching[b].add(a)

    def rank(item_id: str) -> tuple[int, int, str]:
        return (0 if by_id[item_id].get("mosaic") else 1, -len(touching[item_id]), item_id)

    heap = [rank(i) for i in touching]
    heapq.heapify(heap)
    dropped: set[str] = set()
    while heap:
        entry = heapq.heappop(heap)
        item_id = entry[2]
        if item_id in dropped or not touching[item_id]:
            continue
        if entry != rank(item_id):  # its count fell since it was pushed
            heapq.heappush(heap, rank(item_id))
            continue
        dropped.add(item_id)
        for other in touching.pop(item_id):
            touching[other].discard(item_id)
            if touching[other]:
                heapq.heappush(heap, rank(other))
    kept = {
        name: [item for item in items if item["id"] not in dropped] for name, items in parts.items()
    }
    return kept, [by_id[i] for i in sorted(dropped)]
