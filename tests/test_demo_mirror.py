"""The offline demo's parts: synthetic images, the loopback mirror's API shapes and traps, spec."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import requests
from PIL import Image, ImageFilter

from acnedata.demo.mirror import (
    AIHUB_PATH,
    DATAGOKR_PATH,
    DEMO_CREDENTIALS,
    DEMO_KAGGLE_BASIC,
    DEMO_KAGGLE_TOKEN,
    DEMO_OPENVERSE_CLIENT,
    DEMO_SERVICE_KEY,
    DEMO_SERVICE_KEY_UNAPPROVED,
    GALLERY_PRIVATE,
    ISIC_PATH,
    ISIC_QUERY,
    KAGGLE_LEGACY_PATH,
    KAGGLE_LIST_PATH,
    OPENVERSE_PATH,
    OPENVERSE_TOKEN_PATH,
    PLANTED_KINDS,
    DemoMirror,
)
from acnedata.demo.spec import demo_credentials, demo_spec_toml
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


# --- the all-sources mirror: Openverse, ISIC, web gallery, data.go.kr, Kaggle, AI Hub ---------

OV_FILTER = "cc0,pdm,by,by-sa"  # what the Openverse client asks for under acne-l70's policy
OV_REQUIRED = ("license", "license_version", "license_url", "creator", "foreign_landing_url",
               "attribution", "tags", "url", "width", "height")  # fmt: skip


def ov(mirror: DemoMirror, **params: str) -> requests.Response:
    return requests.get(mirror.base_url + OPENVERSE_PATH, params=params, timeout=10)


def test_openverse_envelope_paging_and_items_on_the_mirror(mirror: DemoMirror) -> None:
    first = ov(mirror, q="papular acne", license=OV_FILTER, page_size="3", page="1").json()
    assert set(first) == {
        "result_count", "page_count", "page_size", "page", "results", "warnings"
    }  # fmt: skip
    assert (first["result_count"], first["page_count"], first["page_size"]) == (4, 2, 3)
    second = ov(mirror, q="papular acne", license=OV_FILTER, page_size="3", page="2").json()
    items = first["results"] + second["results"]
    assert len({i["id"] for i in items}) == 4 and second["page"] == 2
    for item in items:
        for key in OV_REQUIRED:
            assert item[key], key
        assert item["license"] in OV_FILTER.split(",")
        assert item["attribution"].startswith(f'"{item["title"]}" by {item["creator"]}')
        assert item["url"].startswith(mirror.base_url) and item["tags"][0]["accuracy"] is None
    resp = requests.get(items[0]["url"], timeout=10)
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(resp.content)).size == (items[0]["width"], items[0]["height"])
    assert ov(mirror, q="sunset beach", license=OV_FILTER).json()["results"] == []


def test_openverse_licence_filter_keeps_nc_and_nd_out_unless_asked(mirror: DemoMirror) -> None:
    (nc,) = mirror.planted_more["openverse_noncommercial"]
    (nd,) = mirror.planted_more["openverse_no_derivatives"]
    for term in ("papular acne", "pustular acne"):
        filtered = {i["id"] for i in ov(mirror, q=term, license=OV_FILTER).json()["results"]}
        assert nc not in filtered and nd not in filtered
    only_nc = ov(mirror, q="papular acne", license="by-nc").json()["results"]
    assert [(i["id"], i["license"]) for i in only_nc] == [(nc, "by-nc")]
    only_nd = ov(mirror, q="pustular acne", license="by-nd").json()["results"]
    assert [(i["id"], i["license"]) for i in only_nd] == [(nd, "by-nd")]
    unfiltered = {i["id"] for i in ov(mirror, q="pustular acne").json()["results"]}
    assert nd in unfiltered  # no filter at all: every licence, as on the real API
    bad = ov(mirror, q="acne", license="by,nope")
    assert bad.status_code == 400 and "nope" in bad.text


def test_openverse_anonymous_page_size_limit_and_token(mirror: DemoMirror) -> None:
    resp = ov(mirror, q="blackhead", page_size="21")
    assert resp.status_code == 401
    assert resp.json() == {"detail": "page_size may not exceed 20 for anonymous requests"}
    token = requests.post(
        mirror.base_url + OPENVERSE_TOKEN_PATH,
        data={"grant_type": "client_credentials"},
        auth=DEMO_OPENVERSE_CLIENT,
        timeout=10,
    )
    assert token.status_code == 200 and token.json()["token_type"] == "Bearer"
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    url = mirror.base_url + OPENVERSE_PATH
    ok = requests.get(url, params={"q": "blackhead", "page_size": 50}, headers=bearer, timeout=10)
    assert ok.status_code == 200 and ok.json()["page_size"] == 50
    wrong = requests.get(
        url, params={"q": "blackhead"}, headers={"Authorization": "Bearer x"}, timeout=10
    )
    assert wrong.status_code == 401
    refused = requests.post(
        mirror.base_url + OPENVERSE_TOKEN_PATH,
        data={"grant_type": "client_credentials"},
        auth=("someone", "else"),
        timeout=10,
    )
    assert refused.status_code == 401


def isic(mirror: DemoMirror, **params: str) -> requests.Response:
    return requests.get(mirror.base_url + ISIC_PATH, params=params, timeout=10)


def test_isic_cursor_paging_count_on_first_page_only(mirror: DemoMirror) -> None:
    body = isic(mirror, query=ISIC_QUERY, limit="2").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 5 and body["previous"] is None
    ids, licences, pages = [], set(), 0
    while True:
        pages += 1
        for item in body["results"]:
            ids.append(item["isic_id"])
            licences.add(item["copyright_license"])
            assert item["public"] is True and item["attribution"]
            clinical = item["metadata"]["clinical"]
            assert clinical["diagnosis_3"] == "Infundibular or epidermal cyst"
        if body["next"] is None:
            break
        query = parse_qs(urlsplit(body["next"]).query)
        assert base64.b64decode(query["cursor"][0]).decode().startswith("p=ISIC_")
        assert query["query"] == [ISIC_QUERY] and query["limit"] == ["2"]
        body = requests.get(body["next"], timeout=10).json()
        assert body["count"] is None and body["previous"]
    assert pages == 3 and ids == sorted(ids) and len(set(ids)) == 5
    assert licences == {"CC-0", "CC-BY", "CC-BY-NC"}
    assert mirror.planted_more["isic_noncommercial"][0] in ids
    item = isic(mirror, query=ISIC_QUERY).json()["results"][0]
    full = requests.get(item["files"]["full"]["url"], timeout=10)
    thumb = requests.get(item["files"]["thumbnail_256"]["url"], timeout=10)
    assert item["files"]["full"]["url"].startswith(mirror.base_url + "/isic/")
    assert Image.open(io.BytesIO(full.content)).size == (
        item["metadata"]["acquisition"]["pixels_x"],
        item["metadata"]["acquisition"]["pixels_y"],
    )
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 256
    assert len(full.content) == item["files"]["full"]["size"]


def test_isic_query_dsl_is_read_loosely_and_bad_queries_are_400(mirror: DemoMirror) -> None:
    nevi = isic(mirror, query="diagnosis_3:Nevus AND image_type:dermoscopic").json()
    assert nevi["count"] == 3
    either = isic(mirror, query='diagnosis_3:Nevus OR diagnosis_3:"Infundibular or epidermal cyst"')
    assert either.json()["count"] == 8
    assert isic(mirror, query="age_approx:[0 TO 200]").json()["count"] == 8
    for bad in ("diagnosis:melanoma", 'diagnosis_3:"Nevus', "just words"):
        resp = isic(mirror, query=bad)
        assert resp.status_code == 400 and "query" in resp.json()["detail"], bad
    assert isic(mirror, cursor="%%%").status_code == 400


def test_gallery_pages_use_every_way_to_name_an_image(mirror: DemoMirror) -> None:
    from bs4 import BeautifulSoup

    from acnedata.sources.webpage import page_candidates

    url = mirror.base_url + "/gallery/papular.html"
    page = requests.get(url, timeout=10)
    assert page.headers["Content-Type"].startswith("text/html")
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.find("img", srcset=True) and soup.find("img", attrs={"data-src": True})
    assert soup.find("a", href=lambda h: h and h.endswith(".jpg"))
    assert len(soup.find_all("figcaption")) == 4
    licences = [a["href"] for a in soup.find_all("a", rel="license")]
    assert licences == [
        "https://creativecommons.org/licenses/by-nc/4.0/",  # the one figure's own
        "https://creativecommons.org/licenses/by/4.0/",  # the page's
    ]
    nxt = soup.find("link", rel="next")["href"]
    assert nxt == "/gallery/papular.html?page=2"
    found = {urlsplit(c.url).path: c for c in page_candidates(soup, url)}
    (nc,) = mirror.planted_more["gallery_noncommercial"]
    assert set(found) == {
        "/gallery/img/papular-1-384.jpg",  # the largest srcset entry, not the 192 w src
        "/gallery/img/papular-2.jpg",  # lazy data-src
        "/gallery/img/papular-3.jpg",  # the linked file, not its thumbnail
        nc,
    }  # no badge, no tracking pixel
    assert found[nc].licence_raw["licence"] == "CC BY-NC 4.0"
    assert found["/gallery/img/papular-2.jpg"].author == "Demo Dermatology Clinic"
    for path in found:
        assert requests.get(mirror.base_url + path, timeout=10).status_code == 200
    second = BeautifulSoup(requests.get(mirror.base_url + nxt, timeout=10).text, "html.parser")
    assert second.find(rel="next") is None and len(second.find_all("figure")) == 2
    private = BeautifulSoup(
        requests.get(mirror.base_url + GALLERY_PRIVATE, timeout=10).text, "html.parser"
    )
    assert private.find("meta", attrs={"name": "robots"})["content"] == "noimageindex"
    assert requests.get(mirror.base_url + "/gallery/rosacea.html", timeout=10).status_code == 404


def odcloud(mirror: DemoMirror, **params: str) -> requests.Response:
    return requests.get(mirror.base_url + DATAGOKR_PATH, params=params, timeout=10)


def test_odcloud_envelope_title_filter_and_key_errors(mirror: DemoMirror) -> None:
    missing = odcloud(mirror, **{"cond[title::LIKE]": "여드름"})
    assert missing.status_code == 401 and missing.json()["code"] == -4
    wrong = odcloud(mirror, serviceKey="guess")
    assert wrong.json() == {"code": -4, "msg": "등록되지 않은 인증키 입니다."}
    assert odcloud(mirror, serviceKey=DEMO_SERVICE_KEY_UNAPPROVED).json()["code"] == -3
    body = odcloud(
        mirror,
        serviceKey=DEMO_SERVICE_KEY,
        page="1",
        perPage="1",
        returnType="JSON",
        **{"cond[title::LIKE]": "여드름"},
    ).json()
    assert set(body) == {"page", "perPage", "totalCount", "currentCount", "matchCount", "data"}
    assert (body["totalCount"], body["matchCount"], body["currentCount"]) == (3, 2, 1)
    (row,) = body["data"]
    assert "여드름" in row["title"] and row["page_url"].startswith(mirror.base_url)
    header = requests.get(
        mirror.base_url + DATAGOKR_PATH,
        headers={"Authorization": f"Infuser {DEMO_SERVICE_KEY}"},
        timeout=10,
    )
    assert header.status_code == 200 and header.json()["matchCount"] == 3
    assert odcloud(mirror, serviceKey=DEMO_SERVICE_KEY, perPage="x").json()["code"] == -2


def test_kaggle_current_and_legacy_wire_formats(mirror: DemoMirror) -> None:
    url = mirror.base_url + KAGGLE_LIST_PATH
    assert requests.post(url, json={"search": "acne"}, timeout=10).status_code == 401
    bearer = {"Authorization": f"Bearer {DEMO_KAGGLE_TOKEN}"}
    page1 = requests.post(url, json={"search": "acne", "page": 1}, headers=bearer, timeout=10)
    datasets = page1.json()["datasets"]
    assert [d["ref"] for d in datasets] == [
        "demo-uploader/dermnet-acne-images",
        "demo-lab/acne-severity-photos",
        "demo-stats/acne-diet-survey",
    ]
    assert datasets[0]["licenseName"] == "CC0: Public Domain"
    assert isinstance(datasets[0]["totalBytes"], str)  # protobuf JSON: int64 as a string
    assert "isPrivate" not in datasets[0]  # ... and false fields left out
    empty = requests.post(url, json={"search": "acne", "page": 2}, headers=bearer, timeout=10)
    assert empty.json() == {}
    legacy_url = mirror.base_url + KAGGLE_LEGACY_PATH
    assert requests.get(legacy_url, params={"search": "acne"}, timeout=10).status_code == 401
    legacy = requests.get(
        legacy_url, params={"search": "acne", "page": 1}, auth=DEMO_KAGGLE_BASIC, timeout=10
    ).json()
    assert isinstance(legacy, list) and len(legacy) == 3
    assert legacy[0]["isPrivate"] is False and isinstance(legacy[0]["totalBytes"], int)
    assert (
        requests.get(
            legacy_url, params={"search": "acne", "page": 2}, auth=DEMO_KAGGLE_BASIC, timeout=10
        ).json()
        == []
    )


def test_aihub_catalogue_is_plain_utf8_lines(mirror: DemoMirror) -> None:
    resp = requests.get(mirror.base_url + AIHUB_PATH, timeout=10)
    assert resp.headers["Content-Type"].startswith("text/plain")
    lines = resp.content.decode("utf-8").splitlines()
    assert all(line.split(",", 1)[0].isdigit() for line in lines)
    assert [line for line in lines if "여드름" in line] == ["90002,여드름 피부 이미지 데이터"]


def test_quick_mirror_never_draws_the_other_sources() -> None:
    with DemoMirror(per_class=8, seed=2) as m:
        requests.get(m.base_url + "/robots.txt", timeout=10)
        assert m._more is None  # the quick demo does not pay for images it never asks for
        requests.get(m.base_url + AIHUB_PATH, timeout=10)  # portals need no images either
        assert m._more is None


def test_all_sources_spec_points_every_source_at_the_mirror(tmp_path) -> None:
    base = "http://127.0.0.1:4321"
    path = tmp_path / "all.toml"
    path.write_text(demo_spec_toml(base + "/", per_class=9, all_sources=True), encoding="utf-8")
    spec = load_spec(path)
    assert set(spec.sources) == {
        "commons", "zenodo", "huggingface", "openverse", "isic", "webpage", "datagokr",
        "kaggle", "aihub",
    }  # fmt: skip
    for src in spec.sources.values():
        assert src.base_url == "" or src.base_url.startswith(base + "/"), src.name
    assert spec.sources["openverse"].base_url == base + OPENVERSE_PATH
    assert spec.sources["isic"].options["queries"] == {"nodulocystic": ISIC_QUERY}
    web = spec.sources["webpage"].options
    assert web["follow_pagination"] is True
    assert web["pages"]["papular"] == [base + "/gallery/papular.html"]
    assert base + GALLERY_PRIVATE in web["pages"]["comedonal"]
    assert spec.sources["kaggle"].options["api"] == "current"
    assert spec.limits.per_class == 9 and spec.policy == load_spec("acne-l70").policy
    quick = tmp_path / "quick.toml"
    quick.write_text(demo_spec_toml(base, per_class=9), encoding="utf-8")
    assert set(load_spec(quick).sources) == {"commons", "zenodo", "huggingface"}


def test_demo_credentials_are_set_for_the_block_only(monkeypatch) -> None:
    monkeypatch.setenv("KAGGLE_API_TOKEN", "a-real-token")
    monkeypatch.setenv("OPENVERSE_CLIENT_ID", "a-real-client")
    monkeypatch.delenv("DATA_GO_KR_SERVICE_KEY", raising=False)
    with demo_credentials() as env:
        assert env == DEMO_CREDENTIALS
        assert os.environ["KAGGLE_API_TOKEN"] == DEMO_KAGGLE_TOKEN
        assert os.environ["DATA_GO_KR_SERVICE_KEY"] == DEMO_SERVICE_KEY
        assert "OPENVERSE_CLIENT_ID" not in os.environ  # the demo searches Openverse anonymously
    assert os.environ["KAGGLE_API_TOKEN"] == "a-real-token"
    assert os.environ["OPENVERSE_CLIENT_ID"] == "a-real-client"
    assert "DATA_GO_KR_SERVICE_KEY" not in os.environ
    with pytest.raises(RuntimeError), demo_credentials():
        raise RuntimeError("restored on errors too")
    assert os.environ["KAGGLE_API_TOKEN"] == "a-real-token"
