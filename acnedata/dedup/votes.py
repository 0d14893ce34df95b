"""Candidate pairs for region matching: an LSH vote index over the images' ORB descriptors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from acnedata.dedup.keypoints import DEFAULT_REGION_CONFIG, Features, RegionConfig


def _table_bits(config: RegionConfig) -> np.ndarray:
    """(tables, bits) descriptor bit positions that make each table's key; fixed by a seed so
    every run (and every worker) builds the same index."""
    rng = np.random.default_rng(20261205)
    return np.stack(
        [rng.choice(256, config.lsh_bits, replace=False) for _ in range(config.lsh_tables)]
    )


def _keys(descriptors: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """(tables, n) int32 LSH keys: each table's chosen bits of each descriptor."""
    assert bits.shape[1] <= 31, "an LSH key must fit an int32"
    out = np.empty((len(bits), len(descriptors)), np.int32)
    weights = 1 << np.arange(bits.shape[1], dtype=np.int32)
    for start in range(0, len(descriptors), 1 << 16):  # unpacked bits are 8x the descriptors
        unpacked = np.unpackbits(descriptors[start : start + (1 << 16)], axis=1)
        for t, chosen in enumerate(bits):
            out[t, start : start + len(unpacked)] = unpacked[:, chosen].astype(np.int32) @ weights
    return out


def _add_votes(
    total: tuple[np.ndarray, np.ndarray], codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(codes, counts) so far plus one table's raw codes: counting table by table keeps only
    the distinct codes in memory, not every collision of all the tables at once. Both code
    lists are sorted, so the table's codes are merged in, not the total sorted again."""
    new, counts = np.unique(codes, return_counts=True)
    known, known_counts = total
    at = np.searchsorted(known, new)
    hit = at < len(known)
    hit[hit] = known[at[hit]] == new[hit]
    known_counts = known_counts.copy()
    known_counts[at[hit]] += counts[hit]
    miss = ~hit
    return (
        np.insert(known, at[miss], new[miss]),
        np.insert(known_counts, at[miss], counts[miss]),
    )


def _stack(feats: Sequence[Features | None], mirror: bool) -> tuple[np.ndarray, np.ndarray]:
    """All descriptors of the collection and the image index of each."""
    parts = [
        (f.mirror_descriptors if mirror else f.descriptors) if f else np.zeros((0, 32), np.uint8)
        for f in feats
    ]
    owners = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
    return np.concatenate(parts) if parts else np.zeros((0, 32), np.uint8), owners


def _bucket_pairs(
    keys: np.ndarray, owners: np.ndarray, side: np.ndarray, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """(owner, owner) of every two entries in one bucket, one from side 0 and one from side 1.

    Buckets of more than `cap` entries are left out: a key that many descriptors share is a
    common texture (skin pores, JPEG blocks), not evidence of a shared region. The pairs are
    made bucket by bucket, each side-0 entry with the bucket's side-1 run, so the work follows
    the pairs made, not the cap (the wide index of loner_pairs keeps buckets of 96).
    """
    order = np.argsort(keys.astype(np.int64) * 2 + side, kind="stable")  # by key, side 0 first
    k, o, s = keys[order], owners[order], side[order]
    if not len(k):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    sizes = np.diff(np.r_[starts, len(k)])
    queries = np.add.reduceat((s == 0).astype(np.int64), starts)  # side 0 sorts first
    others = sizes - queries
    kept = (sizes <= cap) & (queries > 0) & (others > 0)
    starts, queries, others = starts[kept], queries[kept], others[kept]
    # each side-0 entry of a kept bucket, with the bucket's side-1 run (where and how long)
    bucket = np.repeat(np.arange(len(starts)), queries)
    first = (
        starts[bucket] + np.arange(len(bucket)) - np.repeat(np.cumsum(queries) - queries, queries)
    )
    run_start, run_len = (starts + queries)[bucket], others[bucket]
    left = np.repeat(o[first], run_len)
    offset = np.arange(run_len.sum()) - np.repeat(np.cumsum(run_len) - run_len, run_len)
    right = o[np.repeat(run_start, run_len) + offset]
    return left.astype(np.int64), right.astype(np.int64)


def index_keys(
    index: Sequence[Features | None], config: RegionConfig = DEFAULT_REGION_CONFIG
) -> np.ndarray:
    """(tables, descriptors) LSH keys of the index images' descriptors (not of their mirror
    images'), for vote_pairs to take instead of making them again."""
    return _keys(_stack(index, mirror=False)[0], _table_bits(config))


AS_IS, MIRRORED, BOTH = 1, 2, 3  # which orientations of b a candidate pair is verified in


def vote_pairs(
    queries: Sequence[Features | None],
    index: Sequence[Features | None],
    config: RegionConfig = DEFAULT_REGION_CONFIG,
    self_join: bool = False,
    keys: np.ndarray | None = None,
) -> list[tuple[int, int, int]]:
    """Candidate (query, index, orientations) image pairs, by descriptor collisions in LSH tables.

    Each table keys a descriptor by a fixed random subset of its 256 bits, so two descriptors
    a few bits apart often share a key in some table. A query's descriptors, and those of its
    mirror image, vote for every index image they collide with; each query keeps its
    `candidates` best-voted partners with at least `min_votes` votes. With self_join, queries and
    index are the same collection and pairs are (i, j) with i < j, each once.

    orientations says which of verify_pair's two passes to run: the one whose descriptors cast
    most of the votes (AS_IS or MIRRORED), or BOTH when neither has 1.5 times the other's. On
    augmented copies the votes chose the orientation that verified in 1,450 of 1,466 pairs, and
    each pass is a brute-force match, the bulk of the stage's time.

    keys: the index's index_keys when already made.
    """
    bits = _table_bits(config)
    qd, qo = _stack(queries, mirror=False)
    md, mo = _stack(queries, mirror=True)
    idx_d, idx_o = _stack(index, mirror=False)
    index_k = keys if keys is not None else _keys(idx_d, bits)
    # in a self-join the queries' own descriptors are the index's: their keys are made once
    q_keys = np.concatenate([index_k if self_join else _keys(qd, bits), _keys(md, bits)], axis=1)
    # Owners carry the orientation in their lowest bit: 1 for a query's mirror descriptors.
    q_own = np.r_[qo * 2, mo * 2 + 1]
    n_index = max(len(index), 1)
    votes = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    for t in range(len(bits)):
        table, owners = index_k[t], idx_o * 2
        if not self_join:  # a few queries against a large index: only keys they hold can pair
            near = np.isin(table, q_keys[t])
            table, owners = table[near], owners[near]
        side = np.r_[np.zeros(len(q_own), np.int8), np.ones(len(table), np.int8)]
        qi, ii = _bucket_pairs(
            np.r_[q_keys[t], table], np.r_[q_own, owners], side, config.bucket_cap
        )
        flag, qi, ii = qi % 2, qi // 2, ii // 2
        if self_join:
            keep = qi != ii
            flag, qi, ii = flag[keep], qi[keep], ii[keep]
            # a vote from i's descriptor for j is also one from j's for i (mirroring is mutual)
            qi, ii = np.minimum(qi, ii), np.maximum(qi, ii)
        votes = _add_votes(votes, (qi * n_index + ii) * 2 + flag)
    uniq, counts = votes
    pair_codes = np.unique(uniq // 2)
    by_flag = np.zeros((len(pair_codes), 2), np.int64)
    by_flag[np.searchsorted(pair_codes, uniq // 2), uniq % 2] = counts
    counts = by_flag.sum(axis=1)
    strong = counts >= config.min_votes
    pair_codes, counts, by_flag = pair_codes[strong], counts[strong], by_flag[strong]
    as_is, mirrored = by_flag[:, 0], by_flag[:, 1]
    orientation = np.where(
        np.maximum(as_is, mirrored) >= 1.5 * np.minimum(as_is, mirrored),
        np.where(as_is >= mirrored, AS_IS, MIRRORED),
        BOTH,
    )
    qi, ii = pair_codes // n_index, pair_codes % n_index
    # Each side keeps its best-voted partners: a pair stays if either end ranks it high.
    chosen: set[int] = set()
    for owner_col in (qi, ii) if self_join else (qi,):
        order = np.lexsort((-counts, owner_col))
        ranked = owner_col[order]
        starts = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1]
        rank = np.arange(len(ranked)) - np.repeat(starts, np.diff(np.r_[starts, len(ranked)]))
        chosen.update(order[rank < config.candidates].tolist())
    picked = sorted(chosen)
    return list(
        zip(qi[picked].tolist(), ii[picked].tolist(), orientation[picked].tolist(), strict=True)
    )


def loner_pairs(
    feats: Sequence[Features | None],
    tried: Sequence[tuple[int, ...]],
    linked: set[int],
    config: RegionConfig = DEFAULT_REGION_CONFIG,
    mosaics: set[int] = frozenset(),
    keys: np.ndarray | None = None,
) -> list[tuple[int, int, int]]:
    """A second chance for the images of one collection that no verified pair links: their
    candidates (i < j, orientations) from an index that keeps buckets of up to
    `loner_bucket_cap` entries, less the pairs already tried. Mosaics (their indices) do not
    ask again: their keypoints were found tile by tile, and on the shared export they are most
    of the loners while almost none of their wide-index candidates verifies.

    The cap that keeps the first pass fast drops the crowded buckets where a smooth close-up's
    few distinctive descriptors sit. Among 1,400 augmented copies of 200 photos (bench/
    leak_content.py), 21 images came out of the first pass unlinked, and half of the copies left
    apart from their photo were joined to it this way.
    """
    loners = [
        i for i, f in enumerate(feats) if f is not None and i not in linked and i not in mosaics
    ]
    if not loners or config.loner_bucket_cap <= 0:
        return []
    wide = replace(config, bucket_cap=config.loner_bucket_cap, candidates=config.loner_candidates)
    done = {(p[0], p[1]) for p in tried}
    found: dict[tuple[int, int], int] = {}
    asked = [feats[i] for i in loners]
    for q, j, orientation in vote_pairs(asked, feats, wide, keys=keys):
        i = loners[q]
        pair = (min(i, j), max(i, j))
        if i != j and pair not in done and pair not in found:
            found[pair] = orientation
    return [(a, b, o) for (a, b), o in sorted(found.items())]
