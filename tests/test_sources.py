"""Sources against a real local server: Commons in both formatversions, URL lists, folders."""

import json
from pathlib import Path

import pytest
from imagefactory import make_image

from acnedata.errors import SourceError
from acnedata.http import HttpConfig, PoliteSession
from acnedata.sources.base import SearchContext
from acnedata.sources.commons import CommonsSource, html_to_text
from acnedata.sources.folder import FolderSource
from acnedata.sources.urllist import UrlListSource
from acnedata.spec import parse_spec


def spec_for(base_url: str, **source_opts):
    raw = {
        "name": "t",
        "limits": {"per_class": source_opts.pop("per_class", 50)},
        "network": {"allow_private": True, "min_interval": 0.0},
        "sources": {"commons": {"base_url": base_url, **source_opts}},
        "classes": [
            {"name": "pustular", "terms": {"en": ["pustular acne"], "ko": ["농포성 여드름"]}}
        ],
    }
    return parse_spec(raw, where="test.toml")


def page(pageid: int, index: int, licence: str = "CC BY-SA 4.0") -> dict:
    meta = {
        "ObjectName": {"value": f"Acne {pageid}", "source": "x", "hidden": ""},
        "ImageDescription": {"value": "<p>Papulo<b>pustular</b> acne</p>", "source": "x"},
        "Artist": {"value": '<a href="//commons.wikimedia.org/wiki/User:X">X Y</a>', "source": "x"},
        "Credit": {"value": '<span class="int-own-work">Own work</span>', "source": "x"},
        "LicenseShortName": {"value": licence, "source": "x", "hidden": ""},
        "LicenseUrl": {"value": "https://creativecommons.org/licenses/by-sa/4.0", "source": "x"},
        "License": {"value": "cc-by-sa-4.0", "source": "x"},
        "AttributionRequired": {"value": "true", "source": "x"},
    }
    return {
        "pageid": pageid,
        "ns": 6,
        "title": f"File:Acne {pageid}.jpg",
        "index": index,
        "imageinfo": [
            {
                "url": f"http://img/{pageid}.jpg",
                "width": 800,
                "height": 600,
                "thumburl": f"http://img/thumb/{pageid}.jpg",
                "thumbwidth": 330,
                "thumbheight": 248,
                "descriptionurl": f"https://commons.wikimedia.org/wiki/File:{pageid}",
                "mime": "image/jpeg",
                "extmetadata": meta,
            }
        ],
    }


def commons_handler(version: int, batches: list[list[dict]]):
    """Serve `batches` in turn, with `continue` until the last, in the given formatversion."""
    from urllib.parse import parse_qs, urlsplit

    from httpserver import send

    def handle(req):
        q = {k: v[0] for k, v in parse_qs(urlsplit(req.path).query).items()}
        offset = int(q.get("gsroffset", 0))
        n = offset // 2
        pages = batches[n] if n < len(batches) else []
        body: dict = {"batchcomplete": True if version == 2 else ""}
        if version == 2:
            body["query"] = {"pages": list(reversed(pages))}  # unordered: the client sorts
        else:
            body["query"] = {"pages": {str(p["pageid"]): p for p in pages}}
        if n + 1 < len(batches):
            body["continue"] = {"gsroffset": offset + 2, "continue": "gsroffset||"}
        send(req, 200, json.dumps(body), {"Content-Type": "application/json"})

    return handle


@pytest.mark.parametrize("version", [1, 2])
def test_commons_follows_continue_and_keeps_licence_fields(httpserver, version):
    batches = [[page(1, 1), page(2, 2)], [page(3, 3), page(4, 4)], [page(5, 5)]]
    httpserver.route("/w/api.php", handler=commons_handler(version, batches))
    spec = spec_for(httpserver.url("/w/api.php"), formatversion=version)
    with PoliteSession(HttpConfig.from_spec(spec)) as session:
        ctx = SearchContext(spec, spec.sources["commons"], session)
        found = list(CommonsSource().candidates(ctx))
    # 5 unique pages; the Korean term's search returns the same pages and adds nothing
    assert [c.source_id for c in found] == ["1", "2", "3", "4", "5"]
    first = found[0]
    assert first.searched_class == "pustular"
    assert first.query == "pustular acne"
    assert first.author == "X Y"
    assert first.description == "Papulopustular acne"  # as a browser shows it
    assert first.licence_raw["LicenseShortName"] == "CC BY-SA 4.0"
    assert first.licence_raw["License"] == "cc-by-sa-4.0"
    assert first.licence_raw["AttributionRequired"] == "true"
    assert first.page_url == "https://commons.wikimedia.org/wiki/File:1"
    assert first.url == "http://img/1.jpg"
    # the second request carried every key of `continue`
    queries = [path for _, path, _ in httpserver.requests]
    assert "gsroffset=2" in queries[1] and "continue=gsroffset" in queries[1]
    assert "maxlag=5" in queries[0]
    assert f"formatversion={version}" in queries[0]


def test_commons_thumb_width_and_per_class_limit(httpserver):
    batches = [[page(i, i) for i in range(1, 3)], [page(i, i) for i in range(3, 5)]]
    httpserver.route("/w/api.php", handler=commons_handler(2, batches))
    spec = spec_for(httpserver.url("/w/api.php"), thumb_width=330, per_class=3)
    with PoliteSession(HttpConfig.from_spec(spec)) as session:
        found = list(
            CommonsSource().candidates(SearchContext(spec, spec.sources["commons"], session))
        )
    assert len(found) == 3
    assert found[0].url == "http://img/thumb/1.jpg"
    assert (found[0].width, found[0].height) == (330, 248)
    assert "iiurlwidth=330" in httpserver.requests[0][1]


def test_commons_api_error_is_a_source_error(httpserver):
    httpserver.route(
        "/w/api.php",
        body=json.dumps({"error": {"code": "badvalue", "info": "Unrecognized value"}}),
        headers={"Content-Type": "application/json"},
    )
    spec = spec_for(httpserver.url("/w/api.php"))
    with (
        PoliteSession(HttpConfig.from_spec(spec)) as session,
        pytest.raises(SourceError, match="badvalue"),
    ):
        list(CommonsSource().candidates(SearchContext(spec, spec.sources["commons"], session)))


def test_html_to_text():
    assert html_to_text('<a href="x">Jane</a> <i>Doe</i>') == "Jane Doe"
    assert html_to_text(None) == ""


def _local_ctx(tmp_path: Path, name: str, opts: dict) -> SearchContext:
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text("")
    raw = {
        "name": "t",
        "sources": {name: opts},
        "classes": [{"name": "comedonal", "aliases": ["blemish"]}, {"name": "papular"}],
    }
    spec = parse_spec(raw, where=str(spec_file))
    return SearchContext(spec, spec.sources[name], PoliteSession(HttpConfig()))


def test_url_list_csv_and_jsonl(tmp_path):
    (tmp_path / "urls.csv").write_text(
        "url,license,author,page,label\n"
        "http://a/1.jpg,CC BY 4.0,Ann,http://a/p1,blemish\n"
        "http://a/2.jpg,,,,\n",
        encoding="utf-8",
    )
    found = list(UrlListSource().candidates(_local_ctx(tmp_path, "urllist", {"path": "urls.csv"})))
    assert [c.url for c in found] == ["http://a/1.jpg", "http://a/2.jpg"]
    assert found[0].label_hint == "comedonal"  # alias mapped onto the class
    assert found[0].licence_raw == {"licence": "CC BY 4.0"}
    assert found[0].author == "Ann" and found[0].page_url == "http://a/p1"
    assert found[1].label_hint is None and found[1].licence_raw == {}

    (tmp_path / "urls.jsonl").write_text(
        json.dumps({"url": "http://b/1.png", "licence": "CC0", "label": "papular"}) + "\n",
        encoding="utf-8",
    )
    found = list(
        UrlListSource().candidates(_local_ctx(tmp_path, "urllist", {"path": "urls.jsonl"}))
    )
    assert found[0].label_hint == "papular" and found[0].licence_raw["licence"] == "CC0"


def test_url_list_errors_name_the_file(tmp_path):
    (tmp_path / "bad.csv").write_text("link\nhttp://x\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"bad.csv: row 1 has no url"):
        list(UrlListSource().candidates(_local_ctx(tmp_path, "urllist", {"path": "bad.csv"})))
    with pytest.raises(SourceError, match="URL list not found"):
        list(UrlListSource().candidates(_local_ctx(tmp_path, "urllist", {"path": "none.csv"})))


def test_folder_source_with_sidecars(tmp_path):
    root = tmp_path / "photos"
    for klass, n in (("blemish", 2), ("papular", 1), ("not-a-class", 1)):
        (root / klass).mkdir(parents=True)
        for i in range(n):
            make_image(i).save(root / klass / f"{i}.png")
    (root / "papular" / "0.json").write_text(
        json.dumps({"licence": "CC0", "author": "Bo", "page_url": "http://p"}), encoding="utf-8"
    )
    ctx = _local_ctx(
        tmp_path, "folder", {"path": "photos", "licence": "CC-BY-4.0", "author": "Team"}
    )
    found = list(FolderSource().candidates(ctx))
    assert sorted(c.source_id for c in found) == ["blemish/0.png", "blemish/1.png", "papular/0.png"]
    by_id = {c.source_id: c for c in found}
    assert by_id["blemish/0.png"].label_hint == "comedonal"
    assert by_id["blemish/0.png"].licence_raw == {"licence": "CC-BY-4.0"}
    assert by_id["papular/0.png"].licence_raw == {"licence": "CC0"}
    assert by_id["papular/0.png"].author == "Bo"
    assert by_id["papular/0.png"].url.startswith("file://")
