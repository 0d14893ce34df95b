"""Groups: items that share any content or provenance, which a train/test split keeps together.

A cluster holds interchangeable copies (one is kept); a group joins clusters whose items share
a provenance key (an upload, a patient, a group column) or a content link (a crop, a mosaic
tile, an overlap). The two are never mixed: clusters decide what is kept, groups decide sides.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

# acnemodel's default test share: what `status` measures oversized groups against
DEFAULT_TEST_FRACTION = 0.3

# (item id, cluster id, provenance key or None)
Member = tuple[int, str, str | None]


def group_id_of(smallest_cluster: str, digits: int = 12) -> str:
    """The id of the group whose smallest cluster id is `smallest_cluster`."""
    digest = hashlib.sha256(smallest_cluster.encode("utf-8")).hexdigest()
    return "g" + digest[:digits]


def assign_groups(
    members: Iterable[Member], links: Iterable[tuple[int, int]] = ()
) -> dict[int, str]:
    """Item id → group id: the connected sets over same cluster, same key, and any link.

    A group's id is "g" + 12 hex digits of the sha256 of its smallest cluster id (the full
    digest if two groups' 12 digits collide), so it depends only on which clusters are in the
    group, never on the order of rows. Links naming an item not among `members` are ignored.
    """
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving
            node = parent[node]
        return node

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            # the smaller root wins: with clusters named "c:…" and keys "k:…", the root of a
            # group that holds any cluster is its smallest cluster
            parent[max(ra, rb)] = min(ra, rb)

    cluster_of: dict[int, str] = {}
    for item_id, cluster, key in members:
        node = "c:" + cluster
        cluster_of[item_id] = node
        find(node)
        if key:
            union(node, "k:" + key)
    for a, b in links:
        if a in cluster_of and b in cluster_of:
            union(cluster_of[a], cluster_of[b])

    root_ids = {find(node) for node in cluster_of.values()}
    # every root is a cluster node ("c:" < "k:"), so its name is the group's smallest cluster
    full = {root: group_id_of(root[2:], 64) for root in root_ids}
    prefixes = Counter(gid[:13] for gid in full.values())
    short = {root: gid if prefixes[gid[:13]] > 1 else gid[:13] for root, gid in full.items()}
    return {item_id: short[find(node)] for item_id, node in cluster_of.items()}


def group_sizes(groups: Mapping[int, str]) -> Counter[str]:
    """Items per group."""
    return Counter(groups.values())


def oversized_groups(
    groups: Mapping[int, str],
    labels: Mapping[int, str],
    test_fraction: float = DEFAULT_TEST_FRACTION,
    linkers: Mapping[str, list[str]] | None = None,
) -> list[str]:
    """One line per group too large for a stratified grouped split to reach `test_fraction`.

    linkers: group → the images that hold it together (e.g. the items with the most region
    links), named at the end of its line so a person knows what to look at.

    Only items in `labels` (those a split will see) count. A group holding more than
    1 - test_fraction of one label's items (or of all items) leaves too little for test when it
    goes to train, and too much when it goes to test; a label with a single item is skipped.
    """
    limit = 1.0 - test_fraction
    seen = {i: g for i, g in groups.items() if i in labels}
    per_label = Counter(labels[i] for i in seen)
    in_group: dict[str, Counter[str]] = defaultdict(Counter)
    for item_id, group in seen.items():
        in_group[group][labels[item_id]] += 1
    total = len(seen)
    lines = []

    def via(group: str) -> str:
        names = (linkers or {}).get(group)
        return f"; linked through {', '.join(names)}" if names else ""

    for group in sorted(in_group, key=lambda g: (-sum(in_group[g].values()), g)):
        counts = in_group[group]
        size = sum(counts.values())
        if total > 1 and size > limit * total:
            lines.append(
                f"group {group} holds {size} of {total} items ({size / total:.0%}): no grouped "
                f"split can give test {test_fraction:.0%} of the items{via(group)}"
            )
            continue
        for label in sorted(counts):
            n, of = counts[label], per_label[label]
            if of > 1 and n > limit * of:
                lines.append(
                    f"group {group} holds {n} of {of} {label} items ({n / of:.0%}): no grouped "
                    f"split can give {label} a {test_fraction:.0%} test share{via(group)}"
                )
    return lines


def split_conflicts(
    groups: Mapping[int, str], splits: Mapping[int, str | None], names: Mapping[int, str]
) -> str | None:
    """One line if some group has items in two of the dataset's own splits, else None.

    Such a group leaks whatever side it is trained on; acnemodel refuses the split. `names`
    gives each item's id as the manifest shows it, to name one item on each side.
    """
    sides: dict[str, dict[str, int]] = defaultdict(dict)  # group → split → first item
    for item_id in sorted(groups):
        split = splits.get(item_id)
        if split:
            sides[groups[item_id]].setdefault(split, item_id)
    spanning = sorted(g for g, by_split in sides.items() if len(by_split) > 1)
    if not spanning:
        return None
    first = sides[spanning[0]]
    (a_split, a), (b_split, b) = sorted(first.items())[:2]
    many = f"{len(spanning)} groups have" if len(spanning) > 1 else "1 group has"
    return (
        f"{many} items in more than one of the dataset's own splits (group {spanning[0]}: "
        f"{names[a]} in {a_split}, {names[b]} in {b_split}); a group must stay in one split "
        "(acnemodel refuses one in both train and test): import with another --split-col, or "
        "fix the split"
    )


def linkers(
    groups: Mapping[int, str],
    links: Iterable[tuple[int, int]],
    names: Mapping[int, str],
    most: int = 3,
) -> dict[str, list[str]]:
    """Group → the names of its items with the most content links (at least two): the mosaics
    and crops through which unrelated photos end up in one group."""
    degree: Counter[int] = Counter()
    for a, b in links:
        degree[a] += 1
        degree[b] += 1
    out: dict[str, list[str]] = defaultdict(list)
    for item_id, n in sorted(degree.items(), key=lambda kv: (-kv[1], kv[0])):
        group = groups.get(item_id)
        if group is not None and n >= 2 and len(out[group]) < most and item_id in names:
            out[group].append(f"{names[item_id]} ({n} links)")
    return dict(out)
