"""The offline demo's parts: synthetic images, the loopback mirror's API shapes and traps, spec."""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from PIL import Image, ImageFilter

from acnedata.demo.mirror import PLANTED_KINDS, DemoMirror
from acnedata.demo.spec import demo_spec_toml
from acnedata.demo.synth import CLASSES, draw_lesion_image, near_copy
from acnedata.spec import load_spec

PER_CLASS = 10
COMMONS_PARAMS = {
    "action": "query",
    "format": "json",
    "generator": "search",
    "gsrnamespace": "6",
    "prop": "imageinfo",
    "iiprop": "url|size|mime|extmetadata",
    "iiurlwidth": "128",
    "iiextmetadatafilter": "ObjectName|Artist|LicenseShortName|LicenseUrl|AttributionRequired",
    "maxlag": "5",
}


@pytest.fixture(scope="module")
def mirror() -> Iterator[DemoMirror]:
    with DemoMirror(per_class=PER_CLASS, seed=3) as m:
        yield m


def search(mirror: DemoMirror, text: str, **extra: str) -> requests.Response:
    params = {**COMMONS_PARAMS, "gsrsearch": text, **extra}
    return requests.get(mirror.base_url + "/w/api.php", params=params, timeout=10)


def all_pages(mirror: DemoMirror, text: str, limit: int = 4) -> list[dict]:
    """Follow `continue` to the end, as a client must, and return the pages in rank order."""
    pages: list[dict] = []
    cont: dict = {}
    for _ in range(50):
        body = search(mirror, text, formatversion="2", gsrlimit=str(limit), **cont).json()
        pages += sorted(body.get("query", {}).get("pages", []), key=lambda p: p["index"])
        if "continue" not in body:
            return pages
        cont = {k: str(v) for k, v in body["continue"].items()}
    raise AssertionError("continue never ended")


def info_for(mirror: DemoMirror, title: str) -> dict:
    cls = next(c for c, titles in mirror.titles_by_class.items() if title in titles)
    term = {
        "comedonal": "blackhead",
        "papular": "papular acne",
        "pustular": "pustular acne",
        "nodulocystic": "cystic acne",
    }[cls]
    pages = all_pages(mirror, term, limit=50)
    return next(p for p in pages if p["title"] == title)["imageinfo"][0]


def test_v2_first_page_has_continue_and_ranked_array(mirror: DemoMirror) -> None:
    body = search(mirror, "papular acne filetype:bitmap", formatversion="2", gsrlimit="4").json()
    assert body["batchcomplete"] is True
    assert body["continue"] == {"gsroffset": 4, "continue": "gsroffset||"}
    pages = body["query"]["pages"]
    assert isinstance(pages, list) and sorted(p["index"] for p in pages) == [1, 2, 3, 4]
    page = pages[0]
    assert page["ns"] == 6 and page["title"].startswith("File:")
    info = page["imageinfo"][0]
    for key in (
        "url",
        "descriptionurl",
        "thumburl",
        "thumbwidth",
        "thumbheight",
        "width",
        "height",
        "size",
        "mime",
        "extmetadata",
    ):
        assert key in info, key
    assert set(info["extmetadata"]) <= set(COMMONS_PARAMS["iiextmetadatafilter"].split("|"))
    assert set(info["extmetadata"]["Artist"]) == {"value", "source", "hidden"}
    assert "<a " in info["extmetadata"]["Artist"]["value"]
    assert info["url"].startswith(mirror.base_url + "/media/")
    assert "/wiki/File:" in info["descriptionurl"]


def test_following_continue_yields_per_class_unique_items(mirror: DemoMirror) -> None:
    pages = all_pages(mirror, "comedonal acne", limit=3)
    titles = [p["title"] for p in pages]
    assert len(titles) == PER_CLASS == len(set(titles)) == len({p["pageid"] for p in pages})
    assert [p["index"] for p in pages] == list(range(1, PER_CLASS + 1))
    assert set(titles) == set(mirror.titles_by_class["comedonal"])


def test_v2_order_is_shuffled_but_index_is_rank(mirror: DemoMirror) -> None:
    body = search(mirror, "blackhead", formatversion="2", gsrlimit=str(PER_CLASS)).json()
    indexes = [p["index"] for p in body["query"]["pages"]]
    assert indexes != sorted(indexes)  # the client has to sort; a fixed shuffle shows that
    assert "continue" not in body


def test_v1_pages_object_keyed_by_pageid(mirror: DemoMirror) -> None:
    body = search(mirror, "cystic acne", formatversion="1", gsrlimit="5").json()
    assert body["batchcomplete"] == ""
    assert "continue" in body
    pages = body["query"]["pages"]
    assert isinstance(pages, dict) and len(pages) == 5
    for key, page in pages.items():
        assert key == str(page["pageid"])


def test_korean_term_finds_pustular_only(mirror: DemoMirror) -> None:
    titles = {p["title"] for p in all_pages(mirror, "농포성 여드름")}
    assert titles == set(mirror.titles_by_class["pustular"])
    assert not titles & set(mirror.titles_by_class["comedonal"])


def test_unrelated_search_finds_nothing(mirror: DemoMirror) -> None:
    body = search(mirror, "sunset beach", formatversion="2").json()
    assert body == {"batchcomplete": True}


def test_licences_and_attribution_strings(mirror: DemoMirror) -> None:
    metas = [
        p["imageinfo"][0]["extmetadata"]
        for c in ("blackhead", "papular acne", "cystic acne")
        for p in all_pages(mirror, c, limit=50)
    ]
    names = {m.get("LicenseShortName", {}).get("value") for m in metas}
    assert {"CC BY-SA 4.0", "CC BY-NC-ND 4.0", "CC BY-NC 4.0", "Unknown"} <= names
    for m in metas:
        if "AttributionRequired" in m:
            assert m["AttributionRequired"]["value"] in ("true", "false")
        if m.get("LicenseShortName", {}).get("value") in ("CC0", "Public domain"):
            assert "LicenseUrl" not in m


def test_thumbnail_is_a_smaller_image(mirror: DemoMirror) -> None:
    title = next(
        t
        for t in mirror.titles_by_class["nodulocystic"]
        if not any(t in v for v in mirror.planted.values())
    )
    info = info_for(mirror, title)
    assert info["thumbwidth"] == 128 < info["width"]
    resp = requests.get(info["thumburl"], timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == info["mime"]
    assert Image.open(io.BytesIO(resp.content)).size == (128, info["thumbheight"])


def test_planted_lists_cover_every_kind(mirror: DemoMirror) -> None:
    assert set(mirror.planted) == set(PLANTED_KINDS)
    for kind, titles in mirror.planted.items():
        assert titles, kind
        for title in titles:
            assert any(title in ts for ts in mirror.titles_by_class.values()), (kind, title)


def test_exact_and_cross_class_duplicates_share_bytes(mirror: DemoMirror) -> None:
    for kind in ("exact_duplicate", "cross_class_duplicate"):
        copy = next(t for t in mirror.planted[kind] if t in mirror.duplicate_of)
        original = mirror.duplicate_of[copy]
        assert copy != original
        a = requests.get(mirror.media_url(copy), timeout=10).content
        b = requests.get(mirror.media_url(original), timeout=10).content
        assert a == b and len(a) > 1000
    cross = mirror.planted["cross_class_duplicate"]
    classes = {c for t in cross for c, ts in mirror.titles_by_class.items() if t in ts}
    assert len(classes) == 2


def test_near_duplicates_differ_in_bytes_not_in_look(mirror: DemoMirror) -> None:
    for copy in mirror.planted["near_duplicate"]:
        a = requests.get(mirror.media_url(copy), timeout=10).content
        b = requests.get(mirror.media_url(mirror.duplicate_of[copy]), timeout=10).content
        assert a != b
        ia, ib = (Image.open(io.BytesIO(x)).convert("L").resize((32, 32)) for x in (a, b))
        diff = np.abs(np.asarray(ia, float) - np.asarray(ib, float)).mean()
        assert diff < 12, copy


def test_same_pageid_found_for_two_classes(mirror: DemoMirror) -> None:
    (title,) = mirror.planted["same_item_two_classes"]
    found = [
        p
        for term in ("pustular acne", "nodular acne")
        for p in all_pages(mirror, term)
        if p["title"] == title
    ]
    assert len(found) == 2 and found[0]["pageid"] == found[1]["pageid"]


def test_corrupt_files_do_not_decode(mirror: DemoMirror) -> None:
    for title in mirror.planted["corrupt"]:
        resp = requests.get(mirror.media_url(title), timeout=10)
        assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/jpeg"
        assert resp.content[:2] == b"\xff\xd8"  # starts like a JPEG ...
        with pytest.raises(OSError):  # ... but is cut short
            Image.open(io.BytesIO(resp.content)).load()


def test_html_served_as_jpeg(mirror: DemoMirror) -> None:
    (title,) = mirror.planted["html_as_image"]
    info = info_for(mirror, title)
    assert info["mime"] == "image/jpeg"
    resp = requests.get(info["url"], timeout=10)
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.content.lstrip().lower().startswith(b"<!doctype html")


def test_robots_txt_disallows_the_private_file(mirror: DemoMirror) -> None:
    resp = requests.get(mirror.base_url + "/robots.txt", timeout=10)
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.text == "User-agent: *\nDisallow: /media/private/\n"
    (title,) = mirror.planted["robots_disallowed"]
    info = info_for(mirror, title)
    assert urlsplit(info["url"]).path.startswith("/media/private/")
    assert urlsplit(info["thumburl"]).path == urlsplit(info["url"]).path


def test_licence_traps_carry_the_promised_licences(mirror: DemoMirror) -> None:
    rejected = {
        info_for(mirror, t)["extmetadata"]["LicenseShortName"]["value"]
        for t in mirror.planted["licence_rejected"]
    }
    assert rejected == {"CC BY-NC-ND 4.0", "CC BY-NC 4.0"}
    unknown = [
        info_for(mirror, t)["extmetadata"].get("LicenseShortName", {}).get("value")
        for t in mirror.planted["licence_unknown"]
    ]
    assert sorted(unknown, key=str) == sorted([None, "Unknown"], key=str)


def test_file_page_and_404(mirror: DemoMirror) -> None:
    info = info_for(mirror, mirror.titles_by_class["papular"][0])
    page = requests.get(info["descriptionurl"], timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert requests.get(mirror.base_url + "/nothing/here", timeout=10).status_code == 404


def test_zenodo_paging_via_links_next(mirror: DemoMirror) -> None:
    url = mirror.base_url + "/api/records?q=acne&type=dataset&size=1&page=1"
    licences, totals = [], set()
    while url:
        body = requests.get(url, timeout=10).json()
        totals.add(body["hits"]["total"])
        licences += [h["metadata"]["license"]["id"] for h in body["hits"]["hits"]]
        url = body["links"].get("next")
    assert totals == {2}
    assert licences == ["cc-by-nc-nd-4.0", "other"]
    empty = requests.get(mirror.base_url + "/api/records?q=sunset", timeout=10).json()
    assert empty["hits"] == {"hits": [], "total": 0} and "next" not in empty["links"]


def test_huggingface_link_header_paging(mirror: DemoMirror) -> None:
    url = mirror.base_url + "/api/datasets?search=demo-org&limit=1&full=true"
    ids = []
    while url:
        resp = requests.get(url, timeout=10)
        body = resp.json()
        assert isinstance(body, list) and len(body) == 1
        ids += [d["id"] for d in body]
        url = resp.links.get("next", {}).get("url")
    assert ids == ["demo-org/acne-faces", "demo-org/skin-tone-swatches"]
    acne = requests.get(mirror.base_url + "/api/datasets?search=acne&full=true", timeout=10)
    (ds,) = acne.json()
    assert "license:unknown" in ds["tags"] and ds["cardData"]["license"] == "unknown"
    assert "Link" not in acne.headers


def test_counts_increment_per_path() -> None:
    with DemoMirror(per_class=8, seed=1) as m:
        assert m.total_requests() == 0
        for _ in range(3):
            requests.get(m.base_url + "/robots.txt", timeout=10)
        requests.get(m.base_url + "/w/api.php?action=query", timeout=10)
        assert m.counts["/robots.txt"] == 3
        assert m.counts["/w/api.php"] == 1
        assert m.total_requests() == 4
        base = m.base_url
    with pytest.raises(requests.ConnectionError):  # stop() really closed the port
        requests.get(base + "/robots.txt", timeout=2)


def _stats(img: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(img, float)
    return a.mean(-1), a[..., 0] - (a[..., 1] + a[..., 2]) / 2  # luminance, redness


def _red_fraction(img: Image.Image) -> float:
    """Share of pixels much redder than the image's own skin (skin tone varies per image)."""
    _, red = _stats(img)
    return float((red - np.median(red) > 25).mean())


def _plug_fraction(img: Image.Image) -> float:
    """Share of near-black, not-red pixels: the plugs of open comedones."""
    lum, red = _stats(img)
    return float(((lum < np.median(lum) * 0.5) & (red < 40)).mean())


def test_synth_classes_differ() -> None:
    seeds = range(10)
    pap = [draw_lesion_image("papular", s, size=128) for s in seeds]
    com = [draw_lesion_image("comedonal", s, size=128) for s in seeds]
    # Papules are red against their skin, comedones are not; comedones have black plugs.
    assert np.mean([_red_fraction(p) for p in pap]) > 0.005
    assert max(_red_fraction(c) for c in com) < 0.001
    assert min(_plug_fraction(c) for c in com) > 0.0005 > max(_plug_fraction(p) for p in pap)
    # Pustules add yellow-white heads brighter than the red around them; papules have none.
    pus = [draw_lesion_image("pustular", s, size=128) for s in seeds]
    assert min(_head_fraction(p) for p in pus) > 0.0002 > max(_head_fraction(p) for p in pap)


def _head_fraction(img: Image.Image) -> float:
    """Share of pixels brighter than their neighbourhood and yellow-white: pustule heads."""
    a = np.asarray(img, float)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    local = np.asarray(img.filter(ImageFilter.BoxBlur(5)), float).mean(-1)
    return float(((a.mean(-1) > local + 20) & (g > 0.85 * r) & (b < 0.85 * g)).mean())


def test_synth_is_deterministic_and_seed_dependent() -> None:
    for cls in CLASSES:
        a = draw_lesion_image(cls, 7, size=96)
        assert a.size == (96, 96) and a.mode == "RGB"
        assert a.tobytes() == draw_lesion_image(cls, 7, size=96).tobytes()
        assert a.tobytes() != draw_lesion_image(cls, 8, size=96).tobytes()
    with pytest.raises(ValueError):
        draw_lesion_image("rosacea", 1)


def test_near_copy_kinds() -> None:
    img = draw_lesion_image("pustular", 2, size=128)
    for kind in ("recompress", "brightness", "crop"):
        out = near_copy(img, kind, 5)
        assert out.tobytes() != img.tobytes()
        assert near_copy(img, kind, 5).tobytes() == out.tobytes()
    assert near_copy(img, "crop", 5).size < img.size
    with pytest.raises(ValueError):
        near_copy(img, "flip", 1)


def test_demo_spec_loads_and_points_at_the_mirror(tmp_path) -> None:
    text = demo_spec_toml("http://127.0.0.1:4321/", per_class=12)
    path = tmp_path / "demo.toml"
    path.write_text(text, encoding="utf-8")
    spec = load_spec(path)
    assert spec.network.allow_private is True and spec.network.min_interval == 0.0
    assert spec.contact == "demo@acnedata.invalid"
    assert spec.limits.per_class == 12
    assert (spec.limits.min_width, spec.limits.min_height) == (64, 64)
    assert spec.sources["commons"].base_url == "http://127.0.0.1:4321/w/api.php"
    assert spec.sources["zenodo"].base_url == "http://127.0.0.1:4321/api/records"
    assert spec.sources["huggingface"].base_url == "http://127.0.0.1:4321/api/datasets"
    for src in spec.sources.values():  # nothing may point past loopback
        assert src.base_url == "" or src.base_url.startswith("http://127.0.0.1:4321/")
    builtin = load_spec("acne-l70")
    assert spec.class_names == builtin.class_names
    assert spec.classes == builtin.classes and spec.policy == builtin.policy
