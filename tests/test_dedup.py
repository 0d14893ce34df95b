"""Tests for acnedata.dedup: hashes, union-find, vectorised near pairs, clusters, folders."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import sys

import numpy as np
import pytest
from imagefactory import make_image, to_bytes
from PIL import ImageOps

from acnedata import dedup
from acnedata.dedup import (
    DedupItem,
    UnionFind,
    cluster_items,
    dedup_paths,
    hamming,
    near_pairs,
    perceptual_hash,
    perceptual_hashes,
)
from acnedata.images import validate_image


def _item(key, data: bytes, rank=()) -> DedupItem:
    result = validate_image(data)
    assert result.ok, result.reason
    hashes = perceptual_hashes(result.data)
    return DedupItem(key, result.sha256, hashes[0], result.pixel_sha256, rank, (hashes[1],))


def _flip_bits(h: str, n: int, rng: random.Random) -> str:
    value = int(h, 16)
    for bit in rng.sample(range(64), n):
        value ^= 1 << bit
    return f"{value:016x}"


def _clusters(mapping: dict) -> list[list]:
    groups: dict[str, list] = {}
    for key, (cluster_id, _) in mapping.items():
        groups.setdefault(cluster_id, []).append(key)
    return sorted(sorted(g) for g in groups.values())


# --- hashes -------------------------------------------------------------------------------------


def test_hamming():
    assert hamming("0" * 16, "0" * 16) == 0
    assert hamming("0" * 16, "f" * 16) == 64
    assert hamming("8000000000000001", "0000000000000000") == 2
    with pytest.raises(ValueError):
        hamming("00", "000")


def test_perceptual_hash_accepts_image_path_and_bytes(tmp_path):
    img = make_image("blobs")
    data = to_bytes(img, "PNG")
    (tmp_path / "a.png").write_bytes(data)
    h = perceptual_hash(img)
    assert len(h) == 16 and int(h, 16) >= 0
    assert perceptual_hash(data) == perceptual_hash(tmp_path / "a.png") == h
    assert perceptual_hash(make_image("blobs", seed=1)) != h


def test_perceptual_hashes_mirror_variant():
    img = make_image(3)
    plain, mirror = perceptual_hashes(img)
    assert plain == perceptual_hash(img)
    assert mirror == perceptual_hash(ImageOps.mirror(img))
    assert hamming(plain, mirror) > 16  # why the mirror variant exists at all


# --- union-find ---------------------------------------------------------------------------------


def test_union_find_transitive_groups():
    uf = UnionFind()
    for x in "abcdef":
        uf.add(x)
    uf.union("a", "b")
    uf.union("c", "b")
    uf.union("e", "f")
    assert uf.find("a") == uf.find("c") != uf.find("e")
    groups = sorted(sorted(g) for g in uf.groups().values())
    assert groups == [["a", "b", "c"], ["d"], ["e", "f"]]


def test_union_find_long_chain_has_no_recursion():
    uf = UnionFind()
    n = sys.getrecursionlimit() * 20
    for i in range(n):
        uf.add(i)
    for i in range(n - 1):
        uf._parent[i] = i + 1  # a worst-case chain that union by size never builds itself
    assert uf.find(0) == n - 1
    assert uf._parent[0] != 1  # path halving shortened the chain on the way
    assert len(uf.groups()) == 1
    for i in range(n - 1):
        uf.union(i + 1, i)
    assert len(uf.groups()) == 1


# --- near pairs ---------------------------------------------------------------------------------


def _clustered_hashes(n: int, seed: int) -> list[str]:
    """Hashes in families (a few bits apart) so every threshold has real work to do."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        base = f"{rng.getrandbits(64):016x}"
        out.append(base)
        out.extend(_flip_bits(base, rng.randint(0, 14), rng) for _ in range(rng.randint(0, 4)))
    return out[:n]


def _brute(hashes: list[str], threshold: int) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, j in itertools.combinations(range(len(hashes)), 2)
        if hamming(hashes[i], hashes[j]) <= threshold
    ]


@pytest.mark.parametrize("block", [64, 100, 1024])
@pytest.mark.parametrize("lookup_table", [False, True])
def test_near_pairs_matches_brute_force(block, lookup_table, monkeypatch):
    monkeypatch.setattr(dedup, "_BLOCK", block)
    if lookup_table:
        monkeypatch.delattr(np, "bitwise_count", raising=False)
    hashes = _clustered_hashes(500, seed=block)
    for threshold in (0, 4, 8, 12, 24):
        expected = _brute(hashes, threshold)
        assert near_pairs(hashes, threshold) == expected
    assert any(hamming(hashes[i], hashes[j]) > 0 for i, j in _brute(hashes, 8))


def test_near_pairs_edge_cases():
    assert near_pairs([], 8) == []
    assert near_pairs(["0" * 16], 8) == []
    assert near_pairs(["0" * 16, "f" * 16], 64) == [(0, 1)]
    assert near_pairs(["0" * 16, "0" * 16], -1) == []
    with pytest.raises(ValueError):
        near_pairs(["abc"], 8)


# --- clustering ---------------------------------------------------------------------------------


def test_exact_duplicates_by_sha256_join_without_phash():
    items = [
        DedupItem("a", "1" * 64, None),
        DedupItem("b", "1" * 64, None),
        DedupItem("c", "2" * 64, None),
    ]
    result = cluster_items(items, 8)
    assert result["a"] == result["b"] == ("c" + "1" * 12, "a")
    assert result["c"] == ("c" + "2" * 12, "c")


def test_same_pixels_different_bytes_join_via_pixel_sha256():
    img = make_image("noise", seed=4)
    fast, small = to_bytes(img, "PNG", compress_level=1), to_bytes(img, "PNG", compress_level=9)
    assert fast != small
    a, b = _item("fast", fast), _item("small", small)
    assert a.sha256 != b.sha256 and a.pixel_sha256 == b.pixel_sha256
    # Even with near matching switched off the identical pixels join.
    assert _clusters(cluster_items([a, b], threshold=-1)) == [["fast", "small"]]


def test_near_duplicates_join_and_distinct_images_do_not():
    img = make_image("blobs", seed=11)
    items = [
        _item("orig", to_bytes(img, "PNG")),
        _item("q70", to_bytes(img, "JPEG", quality=70)),
        _item("small", to_bytes(img.resize((96, 96)), "PNG")),
        _item("flip", to_bytes(ImageOps.mirror(img), "PNG")),
    ]
    items += [_item(f"other{k}", to_bytes(make_image(k, seed=11), "PNG")) for k in range(6)]
    result = cluster_items(items, threshold=8)
    assert _clusters(result) == [["flip", "orig", "q70", "small"]] + [
        [f"other{k}"] for k in range(6)
    ]
    # Without the mirror hash the flipped copy stays apart.
    plain = [DedupItem(i.key, i.sha256, i.phash, i.pixel_sha256) for i in items]
    plain_result = cluster_items(plain, 8)
    assert plain_result["orig"][0] == plain_result["q70"][0] != plain_result["flip"][0]


def test_transitive_join_through_a_middle_item():
    rng = random.Random(1)
    a = f"{rng.getrandbits(64):016x}"
    b = _flip_bits(a, 6, rng)
    bits_a_to_b = int(a, 16) ^ int(b, 16)
    c_value = int(b, 16)
    for bit in [k for k in range(64) if not bits_a_to_b >> k & 1][:6]:
        c_value ^= 1 << bit
    c = f"{c_value:016x}"
    assert hamming(a, b) == 6 and hamming(b, c) == 6 and hamming(a, c) == 12
    items = [DedupItem(k, k * 64, h) for k, h in zip("abc", (a, b, c), strict=True)]
    assert _clusters(cluster_items(items, 8)) == [["a", "b", "c"]]
    assert _clusters(cluster_items([items[0], items[2]], 8)) == [["a"], ["c"]]


def test_representative_is_lowest_rank_then_key():
    items = [
        DedupItem("x", "3" * 64, "0" * 16, rank=(2,)),
        DedupItem("y", "1" * 64, "0" * 16, rank=(1, "big")),
        DedupItem("z", "2" * 64, "0" * 16, rank=(1, "big")),
        DedupItem("w", "4" * 64, "f" * 16),
    ]
    result = cluster_items(items, 4)
    assert {result[k] for k in "xyz"} == {("c" + "1" * 12, "y")}
    assert result["w"] == ("c" + "4" * 12, "w")


def test_cluster_ids_do_not_depend_on_input_order():
    rng = random.Random(5)
    hashes = _clustered_hashes(120, seed=5)
    items = [
        DedupItem(f"k{i:03d}", hashlib.sha256(f"{i}".encode()).hexdigest(), h, rank=(i % 7,))
        for i, h in enumerate(hashes)
    ]
    items.append(DedupItem("dup", items[0].sha256, None))  # exact copy of k000, no pHash
    reference = cluster_items(items, 8)
    assert len({cid for cid, _ in reference.values()}) < len(items)
    for _ in range(5):
        shuffled = items[:]
        rng.shuffle(shuffled)
        assert cluster_items(shuffled, 8) == reference
    for cid, _ in reference.values():
        assert cid.startswith("c") and len(cid) == 13


def test_cluster_items_rejects_duplicate_keys():
    with pytest.raises(ValueError):
        cluster_items([DedupItem("a", "1" * 64, None), DedupItem("a", "2" * 64, None)], 8)


# --- folders ------------------------------------------------------------------------------------


def test_dedup_paths_over_a_folder(tmp_path):
    x, y, z = make_image("blobs", seed=21), make_image("waves", seed=22), make_image(7, seed=23)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    files = {
        "x.jpg": to_bytes(x, "JPEG", quality=92),
        "sub/x_copy.jpg": to_bytes(x, "JPEG", quality=92),
        "sub/deeper/x_q70.JPG": to_bytes(x, "JPEG", quality=70),
        "x_flip.png": to_bytes(ImageOps.mirror(x), "PNG"),
        "y.png": to_bytes(y, "PNG"),
        "y_small.webp": to_bytes(y.resize((100, 100)), "WEBP", lossless=True),
        "z.bmp": to_bytes(z, "BMP"),
        "broken.jpg": b"\xff\xd8\xff\xe0 not really a jpeg",
        "notes.txt": b"not an image",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    root = str(tmp_path)
    found = dedup_paths([root])
    assert found == [
        sorted(
            os.path.join(root, n)
            for n in ("x.jpg", "sub/x_copy.jpg", "sub/deeper/x_q70.JPG", "x_flip.png")
        ),
        sorted(os.path.join(root, n) for n in ("y.png", "y_small.webp")),
    ]
    # Files named directly come back exactly as given, and a folder walk finds nothing new.
    direct = dedup_paths([tmp_path / "y.png", str(tmp_path / "y_small.webp"), tmp_path / "z.bmp"])
    assert direct == [[str(tmp_path / "y.png"), str(tmp_path / "y_small.webp")]]
    assert dedup_paths([tmp_path / "notes.txt", tmp_path / "broken.jpg"]) == []
