"""Tests for acnedata.dedup: signatures, verification, multi-index near pairs, clusters, folders."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import sys
from dataclasses import replace

import numpy as np
import pytest
from imagefactory import make_image, make_lit_cheek, make_soft_skin, to_bytes
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from acnedata import dedup
from acnedata.dedup import (
    DEFAULT_CONFIG,
    DedupItem,
    Signature,
    UnionFind,
    cluster_items,
    dedup_paths,
    hamming,
    near_duplicates,
    near_pairs,
    perceptual_hash,
    perceptual_hashes,
    signature,
    similarity,
)
from acnedata.dedup.fill import border_fill
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


def _brute(hashes: list[str]) -> list[tuple[int, int, int]]:
    """(i, j, distance) for every i < j, the slow obvious way."""
    return [
        (i, j, hamming(hashes[i], hashes[j]))
        for i, j in itertools.combinations(range(len(hashes)), 2)
    ]


@pytest.mark.parametrize("block", [64, 100, 1024])
@pytest.mark.parametrize("lookup_table", [False, True])
def test_near_pairs_matches_brute_force(block, lookup_table, monkeypatch):
    monkeypatch.setattr(dedup, "_BLOCK", block)
    if lookup_table:
        monkeypatch.delattr(np, "bitwise_count", raising=False)
    hashes = _clustered_hashes(500, seed=block)
    reference = _brute(hashes)
    for threshold in (0, 4, 8, 12, 24):
        expected = [(i, j) for i, j, d in reference if d <= threshold]
        assert near_pairs(hashes, threshold) == expected
    assert any(0 < d <= 8 for _, _, d in reference)


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
        "x_turned.png": to_bytes(x.rotate(10, resample=Image.Resampling.BICUBIC), "PNG"),
        "y.png": to_bytes(y, "PNG"),
        "sub/y_gray.jpg": to_bytes(y.convert("L"), "JPEG", quality=80),
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
            for n in (
                "x.jpg",
                "sub/x_copy.jpg",
                "sub/deeper/x_q70.JPG",
                "x_flip.png",
                "x_turned.png",
            )
        ),
        sorted(os.path.join(root, n) for n in ("y.png", "y_small.webp", "sub/y_gray.jpg")),
    ]
    # Files named directly come back exactly as given, and a folder walk finds nothing new.
    direct = dedup_paths([tmp_path / "y.png", str(tmp_path / "y_small.webp"), tmp_path / "z.bmp"])
    assert direct == [[str(tmp_path / "y.png"), str(tmp_path / "y_small.webp")]]
    assert dedup_paths([tmp_path / "notes.txt", tmp_path / "broken.jpg"]) == []
    # One file named twice is not a duplicate of itself.
    assert dedup_paths([str(tmp_path / "z.bmp"), str(tmp_path / "z.bmp")]) == []


# --- robust signatures and verification ---------------------------------------------------------


def _watermark(im: Image.Image) -> Image.Image:
    out = im.copy()
    draw = ImageDraw.Draw(out, "RGBA")
    w, h = im.size
    draw.rectangle((w - 70, h - 14, w - 2, h - 2), fill=(255, 255, 255, 160))  # ~4% of 160x128
    draw.text((w - 68, h - 13), "(c) example", fill=(0, 0, 0, 255))
    return out


def _crop(im: Image.Image, area: float, corner: bool = False) -> Image.Image:
    w, h = im.size
    cw, ch = round(w * area**0.5), round(h * area**0.5)
    left, top = (0, 0) if corner else ((w - cw) // 2, (h - ch) // 2)
    return im.crop((left, top, left + cw, top + ch))


def _gamma(im: Image.Image, g: float) -> Image.Image:
    return im.point([round(255 * (i / 255) ** g) for i in range(256)] * 3)


TRANSFORMS = {
    "rotate 5": lambda im: im.rotate(5, resample=Image.Resampling.BICUBIC),
    "rotate -10": lambda im: im.rotate(-10, resample=Image.Resampling.BICUBIC),
    "rotate 15": lambda im: im.rotate(15, resample=Image.Resampling.BICUBIC),
    "crop 90%": lambda im: _crop(im, 0.9),
    "crop 80%": lambda im: _crop(im, 0.8),
    "crop 80% corner": lambda im: _crop(im, 0.8, corner=True),
    "brightness +40%": lambda im: ImageEnhance.Brightness(im).enhance(1.4),
    "brightness -40%": lambda im: ImageEnhance.Brightness(im).enhance(0.6),
    "contrast x1.4": lambda im: ImageEnhance.Contrast(im).enhance(1.4),
    "gamma 1.5": lambda im: _gamma(im, 1.5),
    "grayscale": lambda im: im.convert("L").convert("RGB"),
    "jpeg q30": lambda im: Image.open(__import__("io").BytesIO(to_bytes(im, "JPEG", quality=30))),
    "resize 50%": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "resize 200%": lambda im: im.resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC),
    "hflip": ImageOps.mirror,
    "vflip": ImageOps.flip,
    "rot90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "rot180": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "rot270": lambda im: im.transpose(Image.Transpose.ROTATE_270),
    "watermark": _watermark,
}


def _sig_item(key, img: Image.Image) -> DedupItem:
    data = to_bytes(img.convert("RGB"), "PNG")
    return DedupItem(key, hashlib.sha256(data).hexdigest(), None, signature=signature(data))


@pytest.fixture(scope="module")
def originals():
    # Non-square on purpose: rotations and turns must respect the aspect ratio.
    return [make_image(k, size=(160, 128), seed=40 + k) for k in range(5)]


def test_signature_matches_phash_and_round_trips():
    img = make_image("blobs", seed=3)
    sig = signature(img)
    assert sig.phash == perceptual_hash(img)
    assert len(sig.queries) == 7 + 6 + 5  # flips/turns, ±5/10/15°, centre + 4 corner crops
    assert Signature.from_text(sig.to_text()) == sig
    assert Signature.from_text("0123456789abcdef") is None  # a legacy mirror hash
    assert Signature.from_text("d1:not base64!") is None
    assert Signature.from_text(None) is None
    # Bytes go through the reduced-scale JPEG decoder: the pHash may move a bit or two.
    assert hamming(signature(to_bytes(img, "JPEG", quality=95)).phash, sig.phash) <= 4


T = Image.Transpose
FLIPS = [ImageOps.mirror, ImageOps.flip, T.ROTATE_90, T.ROTATE_180, T.ROTATE_270, T.TRANSPOSE,
         T.TRANSVERSE]  # fmt: skip


@pytest.mark.parametrize("flip", FLIPS)
def test_dihedral_queries_are_the_phash_of_each_flip_and_turn(flip):
    img = make_image(2, size=(160, 128), seed=9)
    flipped = flip(img) if callable(flip) else img.transpose(flip)
    sig = signature(img)
    assert min(hamming(perceptual_hash(flipped), q) for q in sig.queries[:7]) <= 2
    assert hamming(perceptual_hash(flipped), sig.phash) > 10  # plain pHash alone misses it


@pytest.mark.parametrize("kind", sorted(TRANSFORMS))
def test_each_transform_kind_joins_its_original(kind, originals):
    items = [_sig_item(f"orig{k}", im) for k, im in enumerate(originals)]
    items.append(_sig_item("copy", TRANSFORMS[kind](originals[0])))
    result = cluster_items(items)
    assert result["copy"][0] == result["orig0"][0], kind
    assert len({result[f"orig{k}"][0] for k in range(len(originals))}) == len(originals)


def test_verification_rejects_distinct_images_even_as_candidates(originals):
    items = [_sig_item(f"orig{k}", im) for k, im in enumerate(originals)]
    items += [_sig_item(f"other{k}", make_image(k, size=(160, 128), seed=90 + k)) for k in range(5)]
    everything = replace(DEFAULT_CONFIG, hash_threshold=64)  # every pair becomes a candidate
    result = cluster_items(items, config=everything)
    assert len({cid for cid, _ in result.values()}) == len(items)
    # The same pairs without signatures (hash match alone) would all have been joined.
    plain = [DedupItem(i.key, i.sha256, i.phash) for i in items]
    assert len({cid for cid, _ in cluster_items(plain, 64).values()}) == 1


def test_similarity_scores_copies_high_and_strangers_low(originals):
    sig = signature(originals[0])
    assert (
        similarity(sig, signature(originals[0].rotate(12, resample=Image.Resampling.BICUBIC)))
        > 0.94
    )
    assert similarity(sig, signature(ImageOps.flip(originals[0]))) > 0.99
    assert similarity(sig, signature(originals[1])) < 0.9


def test_letterboxed_pictures_compare_what_is_inside_the_frame():
    def framed(img: Image.Image) -> Image.Image:
        canvas = Image.new("RGB", (160, 160), (0, 0, 0))
        canvas.paste(img.resize((64, 64)), (48, 48))
        return canvas

    a, b = framed(make_image(1, seed=70)), framed(make_image(2, seed=71))
    sig_a, sig_b = signature(a), signature(b)
    assert sig_a.content and sig_b.content  # the uniform frame was found
    assert similarity(sig_a, sig_b) < 0.9
    assert similarity(sig_a, signature(ImageOps.mirror(a))) >= DEFAULT_CONFIG.verify_threshold
    assert not signature(make_image(1, seed=70)).content  # an ordinary photo has no frame


def test_two_photos_turned_by_the_same_angle_do_not_join_on_their_black_corners():
    # Smooth close-ups that differ little at thumbnail size (0.914 as they are): turned by
    # 15°, their identical black corners lifted them to 0.947, over the threshold.
    a, b = make_soft_skin(6096), make_soft_skin(7096)
    turn = lambda im: im.rotate(15, resample=Image.Resampling.BICUBIC)  # noqa: E731
    threshold = DEFAULT_CONFIG.verify_threshold
    assert similarity(signature(a), signature(b)) < threshold
    assert similarity(signature(turn(a)), signature(turn(b))) < threshold
    assert similarity(signature(a), signature(turn(a))) >= threshold  # the copy still joins


def test_two_cheeks_lit_alike_do_not_join_on_their_shading_alone():
    # The same light fall-off, different pores: 0.963 on the thumbnails, over the 0.94
    # threshold, but their fine detail does not correlate (0.21). The turned copy keeps both.
    a, b = make_lit_cheek(1), make_lit_cheek(2)
    copy = a.rotate(10, resample=Image.Resampling.BICUBIC)
    sigs = [signature(im) for im in (a, b, copy)]
    assert similarity(sigs[0], sigs[1]) >= DEFAULT_CONFIG.verify_threshold
    items = [
        DedupItem(key=str(k), sha256=f"{k:064x}", phash=sig.phash, signature=sig)
        for k, sig in enumerate(sigs)
    ]
    every_pair = replace(DEFAULT_CONFIG, hash_threshold=64)  # all three pairs are candidates
    assert near_duplicates(items, every_pair) == [(0, 2)]
    clusters = cluster_items(items, config=every_pair)
    assert clusters["0"][0] == clusters["2"][0] != clusters["1"][0]


def test_border_fill_is_the_black_that_touches_the_edge():
    pixels = np.full((16, 16), 120, np.uint8)
    pixels[:3, :3] = 0  # a turned corner
    pixels[7:9, 7:9] = 0  # a dark spot inside the picture: not fill
    fill = border_fill(pixels, grow=0)
    assert fill is not None and fill.sum() == 9 and fill[:3, :3].all()
    grown = border_fill(pixels)  # and the blended pixels next to it
    assert grown is not None and grown.sum() == 15 and not grown[7:9, 7:9].any()
    assert border_fill(np.full((16, 16), 120, np.uint8)) is None


def test_items_without_thumbnails_join_on_hash_alone():
    img = make_image("waves", seed=5)
    with_sig = _sig_item("sig", img)
    legacy = DedupItem("legacy", "9" * 64, perceptual_hash(ImageOps.mirror(img)),
                       alt_phashes=(perceptual_hash(img),))  # fmt: skip
    assert (
        cluster_items([with_sig, legacy])["sig"][0]
        == cluster_items([with_sig, legacy])["legacy"][0]
    )


# --- multi-index near pairs ---------------------------------------------------------------------


def _uint64(hashes):
    return dedup._to_uint64(hashes)


def _brute_set(a, b, t):
    rows = dedup._tile_pairs(a, a if b is None else b, t, triangular=b is None)
    i, j = dedup._concat(list(rows))
    return set(zip(i.tolist(), j.tolist(), strict=True))


@pytest.mark.parametrize("threshold", [0, 2, 5, 8, 10, 12])
@pytest.mark.parametrize("c", [1, 2, 3])
def test_multi_index_plans_equal_brute_force(threshold, c):
    hashes = _clustered_hashes(1500, seed=threshold * 10 + c)
    rng = random.Random(c)
    hashes += [f"{rng.getrandbits(64):016x}" for _ in range(500)]  # plus uniform random ones
    a = _uint64(hashes)
    plan = dedup._Plan.make(threshold + c, c)
    i, j = dedup._pair_arrays(a, None, threshold, plan)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    assert len(found) == len(i)  # each pair reported by exactly one table
    assert found == _brute_set(a, None, threshold)
    assert all(x < y for x, y in found)
    queries = _uint64(hashes[::3]) ^ np.uint64(0b1011)  # 3 bits from a third of the hashes
    i, j = dedup._pair_arrays(a, queries, threshold, plan)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    assert len(found) == len(i) and found == _brute_set(a, queries, threshold)
    if threshold >= 3:
        assert len(found) >= len(queries)


def test_near_pairs_chooses_multi_index_at_scale_and_stays_exact():
    hashes = _clustered_hashes(12000, seed=99)
    assert dedup._choose_plan(len(hashes), len(hashes), 6, True) is not None
    a = _uint64(hashes)
    assert set(near_pairs(hashes, 6)) == _brute_set(a, None, 6)


def test_deep_chain_clusters_without_recursion():
    # 3000 hashes, each 1 bit from the next: one cluster only through 2999 transitive joins.
    chain, value = [], 0
    for k in range(3000):
        value ^= 1 << (k % 64)
        chain.append(f"{value:016x}")
    items = [DedupItem(k, f"{k:064x}", h) for k, h in enumerate(chain)]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        result = cluster_items(items, 1)
    finally:
        sys.setrecursionlimit(limit)
    assert len({cid for cid, _ in result.values()}) == 1
    assert {rep for _, rep in result.values()} == {0}


def test_exif_orientation_is_applied_before_hashing():
    img = make_image(5, size=(160, 120), seed=8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    stored = img.transpose(Image.Transpose.ROTATE_90)  # what a camera writes for that tag
    tagged = to_bytes(stored, "JPEG", quality=95, exif=exif)
    upright = signature(to_bytes(img, "JPEG", quality=95))
    assert hamming(signature(tagged).phash, upright.phash) <= 4


@pytest.mark.parametrize(
    ("size", "why"),
    [((300, 300), "stretched to a square"), ((640, 336), "squeezed to 70% of its height")],
)
def test_an_aspect_changing_resize_joins_its_original(size, why):
    photo = make_image(3, size=(640, 480), seed=12)
    resized = photo.resize(size, Image.Resampling.LANCZOS)
    assert hamming(perceptual_hash(photo), perceptual_hash(resized)) <= 2  # pHash sees a copy
    assert similarity(signature(photo), signature(resized)) >= DEFAULT_CONFIG.verify_threshold, why
    result = cluster_items([_sig_item("photo", photo), _sig_item("resized", resized)])
    assert result["photo"][0] == result["resized"][0], why
    # Stretching a stranger to the photo's shape does not make it a copy.
    stranger = make_image(4, size=(300, 300), seed=13)
    assert similarity(signature(photo), signature(stranger)) < 0.9
