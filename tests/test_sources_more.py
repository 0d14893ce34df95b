"""Openverse, ISIC and web-page sources against a real local server replaying each format."""

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from httpserver import send

from acnedata.errors import SourceError
from acnedata.http import HttpConfig, PoliteSession
from acnedata.licensing import normalise_fields
from acnedata.sources.base import SearchContext
from acnedata.sources.isic import IsicSource
from acnedata.sources.openverse import (
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    OpenverseSource,
    licence_filter,
    token_url,
)
from acnedata.sources.webpage import WebPageSource, largest, parse_srcset
from acnedata.spec import LicencePolicy, parse_spec

JSON = {"Content-Type": "application/json"}
HTML = {"Content-Type": "text/html; charset=utf-8"}
CLASSES = [
    {"name": "papular", "aliases": ["papules"], "terms": {"en": ["papular acne"]}},
    {"name": "nodulocystic", "terms": {"en": ["nodulocystic acne"]}},
]


@pytest.fixture(autouse=True)
def no_openverse_credentials(monkeypatch):
    """Tests start anonymous whatever the developer's environment holds."""
    monkeypatch.delenv(CLIENT_ID_ENV, raising=False)
    monkeypatch.delenv(CLIENT_SECRET_ENV, raising=False)


def make_ctx(source: str, base_url: str = "", *, policy=None, per_class=50, classes=None, **opts):
    raw = {
        "name": "t",
        "limits": {"per_class": per_class},
        "network": {"allow_private": True, "min_interval": 0.0, "max_retries": 0},
        "sources": {source: {"base_url": base_url, **opts}},
        "classes": classes or CLASSES,
    }
    if policy is not None:
        raw["policy"] = policy
    spec = parse_spec(raw, where="test.toml")
    return SearchContext(spec, spec.sources[source], PoliteSession(HttpConfig.from_spec(spec)))


def query_of(path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}


# --- Openverse --------------------------------------------------------------------------------


def ov_item(n: int, licence: str = "by-sa", version: str = "2.0") -> dict:
    """One result in the exact shape of the Openverse envelope (sources.md §2)."""
    return {
        "id": f"d199fcb5-0000-0000-0000-{n:012d}",
        "title": f"Acne {n}",
        "indexed_on": "2020-04-01T00:00:00Z",
        "foreign_landing_url": f"https://www.flickr.com/photos/x/{n}",
        "url": f"https://live.staticflickr.com/{n}.jpg",
        "creator": "Etenil",
        "creator_url": "https://www.flickr.com/photos/x",
        "license": licence,
        "license_version": version,
        "license_url": f"https://creativecommons.org/licenses/{licence}/{version}/",
        "provider": "flickr",
        "source": "flickr",
        "category": "photograph",
        "filesize": None,
        "filetype": None,
        "tags": [{"name": "acne", "accuracy": None}, {"name": "skin", "accuracy": 0.9}],
        "attribution": f'"Acne {n}" by Etenil is licensed under CC BY-SA 2.0.',
        "fields_matched": ["title"],
        "mature": False,
        "height": 768,
        "width": 1024,
        "thumbnail": f"https://api.openverse.org/v1/images/{n}/thumb/",
        "detail_url": f"https://api.openverse.org/v1/images/{n}/",
        "related_url": f"https://api.openverse.org/v1/images/{n}/related/",
        "unstable__sensitivity": [],
    }


def ov_handler(page_count: int, per_page: int = 2, result_count: int | None = None):
    """Serve pages 1..page_count of the envelope; ids differ per query so classes do not overlap."""

    def handle(req):
        q = query_of(req.path)
        page = int(q.get("page", 1))
        offset = 1000 if "nodulocystic" in q.get("q", "") else 0
        start = offset + (page - 1) * per_page
        results = [ov_item(start + i) for i in range(per_page)] if page <= page_count else []
        body = {
            "result_count": result_count or page_count * per_page,
            "page_count": page_count,
            "page_size": int(q.get("page_size", 20)),
            "page": page,
            "results": results,
            "warnings": [],
        }
        send(req, 200, json.dumps(body), JSON)

    return handle


def ov_requests(server) -> list[dict[str, str]]:
    return [query_of(p) for m, p, _ in server.requests if urlsplit(p).path == "/v1/images/"]


def test_openverse_pages_until_page_count_and_keeps_licence_fields(httpserver):
    httpserver.route("/v1/images/", handler=ov_handler(page_count=3))
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"))
    found = list(OpenverseSource().candidates(ctx))
    assert len(found) == 12  # 3 pages x 2 results, for each of the two classes
    sent = ov_requests(httpserver)
    assert [(q["q"], q["page"]) for q in sent] == [
        ("papular acne", "1"),
        ("papular acne", "2"),
        ("papular acne", "3"),
        ("nodulocystic acne", "1"),
        ("nodulocystic acne", "2"),
        ("nodulocystic acne", "3"),
    ]
    first = sent[0]
    assert first["license"] == "cc0,pdm,by,by-sa"  # the default policy: no NC, no ND
    assert first["page_size"] == "20" and first["mature"] == "false"
    c = found[0]
    assert c.source == "openverse" and c.source_id == "d199fcb5-0000-0000-0000-000000000000"
    assert c.url == "https://live.staticflickr.com/0.jpg"
    assert c.page_url == "https://www.flickr.com/photos/x/0"
    assert c.title == "Acne 0" and c.author == "Etenil" and c.tags == ["acne", "skin"]
    assert c.searched_class == "papular" and c.query == "papular acne"
    assert c.attribution.startswith('"Acne 0" by Etenil')
    assert (c.width, c.height) == (1024, 768)
    assert set(c.licence_raw) == {
        "license",
        "license_version",
        "license_url",
        "attribution",
        "creator",
        "creator_url",
        "foreign_landing_url",
        "provider",
        "source",
    }
    assert c.licence_raw["license"] == "by-sa" and c.licence_raw["license_version"] == "2.0"
    assert normalise_fields(c.licence_raw, source="openverse") == "CC-BY-SA-2.0"
    assert found[6].searched_class == "nodulocystic"


def test_openverse_stops_at_per_class_limit_and_pagination_depth(httpserver):
    httpserver.route("/v1/images/", handler=ov_handler(page_count=12, per_page=4))
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"), per_class=5, classes=CLASSES[:1])
    assert len(list(OpenverseSource().candidates(ctx))) == 5
    assert [q["page"] for q in ov_requests(httpserver)] == ["1", "2"]

    httpserver.requests.clear()
    httpserver.route("/v1/images/", handler=ov_handler(page_count=50, per_page=1))
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"), per_class=1000, classes=CLASSES[:1])
    assert len(list(OpenverseSource().candidates(ctx))) == 20  # never past page 20
    assert [q["page"] for q in ov_requests(httpserver)][-1] == "20"


def test_openverse_empty_results_end_the_search(httpserver):
    body = {
        "result_count": 0,
        "page_count": 0,
        "page_size": 20,
        "page": 1,
        "results": [],
        "warnings": [],
    }
    httpserver.route("/v1/images/", body=json.dumps(body), headers=JSON)
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"), classes=CLASSES[:1])
    assert list(OpenverseSource().candidates(ctx)) == []
    assert httpserver.counts["/v1/images/"] == 1


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({}, "cc0,pdm,by,by-sa"),
        ({"noncommercial": True}, "cc0,pdm,by,by-sa,by-nc,by-nc-sa"),
        ({"no_derivatives": True, "allow": ["CC-BY-*"]}, "by,by-sa,by-nd"),  # the glob is wide
        ({"no_derivatives": True, "allow": ["CC-BY-4.0", "CC-BY-ND-4.0"]}, "by,by-nd"),
        (
            {"allow": ["CC-*", "CC0-1.0"], "noncommercial": True, "no_derivatives": True},
            "cc0,pdm,by,by-sa,by-nd,by-nc,by-nc-sa,by-nc-nd",
        ),
        ({"allow": ["CC0-1.0"]}, "cc0"),
        ({"allow": ["CC-BY-4.0"]}, "by"),
    ],
)
def test_openverse_licence_filter_follows_the_policy(httpserver, policy, expected):
    httpserver.route("/v1/images/", handler=ov_handler(page_count=1))
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"), policy=policy, classes=CLASSES[:1])
    list(OpenverseSource().candidates(ctx))
    sent = ov_requests(httpserver)[0]["license"]
    assert sent == expected
    assert "sampling" not in sent  # retired licences are never asked for


def test_openverse_policy_accepting_nothing_is_an_error_without_requests(httpserver):
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"), policy={"allow": ["MIT"]})
    with pytest.raises(SourceError, match="accepts none of the licences"):
        list(OpenverseSource().candidates(ctx))
    assert not httpserver.requests
    assert licence_filter(LicencePolicy(allow=("LicenseRef-CC-Sampling-Plus",))) == []


def test_openverse_anonymous_page_size_is_capped(httpserver):
    httpserver.route("/v1/images/", handler=ov_handler(page_count=1))
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"), page_size=100, classes=CLASSES[:1])
    list(OpenverseSource().candidates(ctx))
    _, path, headers = httpserver.requests[0]
    assert query_of(path)["page_size"] == "20"
    assert "Authorization" not in headers


def token_route(httpserver, token="tok-123"):
    httpserver.route(
        "/v1/auth_tokens/token/",
        body=json.dumps(
            {
                "access_token": token,
                "scope": "read write groups",
                "expires_in": 36000,
                "token_type": "Bearer",
            }
        ),
        headers=JSON,
    )


def test_openverse_client_credentials_token_from_environment(httpserver, monkeypatch):
    monkeypatch.setenv(CLIENT_ID_ENV, "my-id")
    monkeypatch.setenv(CLIENT_SECRET_ENV, "my-secret")
    token_route(httpserver)
    httpserver.route("/v1/images/", handler=ov_handler(page_count=1))
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"), page_size=100, classes=CLASSES[:1])
    assert len(list(OpenverseSource().candidates(ctx))) == 2
    method, path, headers = httpserver.requests[0]
    assert method == "POST" and urlsplit(path).path == "/v1/auth_tokens/token/"
    assert query_of(path)["grant_type"] == "client_credentials"
    basic = base64.b64encode(b"my-id:my-secret").decode()
    assert headers["Authorization"] == f"Basic {basic}"
    _, path, headers = httpserver.requests[1]
    assert headers["Authorization"] == "Bearer tok-123"
    assert query_of(path)["page_size"] == "100"  # allowed once authenticated
    assert httpserver.counts["/v1/auth_tokens/token/"] == 1


def test_openverse_token_url_option_and_derivation(httpserver, monkeypatch):
    assert token_url("https://api.openverse.org/v1/images/") == (
        "https://api.openverse.org/v1/auth_tokens/token/"
    )
    assert token_url("http://mirror/ov/v1/images") == "http://mirror/ov/v1/auth_tokens/token/"
    monkeypatch.setenv(CLIENT_ID_ENV, "id")
    monkeypatch.setenv(CLIENT_SECRET_ENV, "secret")
    httpserver.route("/elsewhere/token", body=json.dumps({"token_type": "Bearer"}), headers=JSON)
    ctx = make_ctx(
        "openverse", httpserver.url("/v1/images/"), token_url=httpserver.url("/elsewhere/token")
    )
    with pytest.raises(SourceError, match="no access_token"):
        list(OpenverseSource().candidates(ctx))
    assert httpserver.counts["/elsewhere/token"] == 1


def test_openverse_rejected_token_request_names_the_variables(httpserver, monkeypatch):
    monkeypatch.setenv(CLIENT_ID_ENV, "id")
    monkeypatch.setenv(CLIENT_SECRET_ENV, "wrong")
    httpserver.route(
        "/v1/auth_tokens/token/",
        status=401,
        body=json.dumps({"error": "invalid_client"}),
        headers=JSON,
    )
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"))
    with pytest.raises(SourceError, match=f"token request failed.*{CLIENT_ID_ENV}"):
        list(OpenverseSource().candidates(ctx))
    assert httpserver.counts["/v1/images/"] == 0


def test_openverse_page_size_401_is_a_clear_error(httpserver, monkeypatch):
    monkeypatch.setenv(CLIENT_ID_ENV, "id")
    monkeypatch.setenv(CLIENT_SECRET_ENV, "secret")
    token_route(httpserver, "expired")
    # The API answers an unaccepted token as it answers anonymous callers (NotAuthenticated).
    detail = {"detail": "page_size may not exceed 20 for anonymous requests"}
    httpserver.route("/v1/images/", status=401, body=json.dumps(detail), headers=JSON)
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"))
    with pytest.raises(SourceError) as info:
        list(OpenverseSource().candidates(ctx))
    message = str(info.value)
    assert "page_size 50 is refused because the token was not accepted" in message
    assert "at most 20" in message and "may not exceed 20" in message
    assert "\n" not in message


def test_openverse_malformed_responses(httpserver):
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"), classes=CLASSES[:1])
    httpserver.route("/v1/images/", body="<html><body>Bad gateway</body></html>", headers=HTML)
    with pytest.raises(SourceError, match="expected JSON, got text/html"):
        list(OpenverseSource().candidates(ctx))

    httpserver.route("/v1/images/", body=json.dumps({"detail": "Not found."}), headers=JSON)
    with pytest.raises(SourceError, match="results list"):
        list(OpenverseSource().candidates(ctx))

    broken = [
        ov_item(1),
        {"id": "no-url"},
        "not an object",
        {"url": "http://x/no-id.jpg"},
        {**ov_item(2), "tags": None, "width": "wide"},
    ]
    body = {"result_count": 5, "page_count": 1, "page_size": 20, "page": 1, "results": broken}
    httpserver.route("/v1/images/", body=json.dumps(body), headers=JSON)
    found = list(OpenverseSource().candidates(ctx))
    assert [c.url for c in found] == [ov_item(1)["url"], ov_item(2)["url"]]
    assert found[1].tags == [] and found[1].width is None


# --- ISIC -------------------------------------------------------------------------------------


def isic_item(n: int, licence: str = "CC-BY") -> dict:
    """One result in the exact shape of the ISIC v2 search (sources.md §3)."""
    isic_id = f"ISIC_{n:07d}"
    return {
        "isic_id": isic_id,
        "public": True,
        "copyright_license": licence,
        "attribution": "Hospital Italiano de Buenos Aires",
        "files": {
            "full": {"url": f"https://content.isic-archive.com/{isic_id}.jpg?sig=x", "size": 9},
            "thumbnail_256": {
                "url": f"https://content.isic-archive.com/{isic_id}_t.jpg?sig=x",
                "size": 1,
            },
        },
        "metadata": {
            "acquisition": {"pixels_x": 1022, "pixels_y": 767, "image_type": "dermoscopic"},
            "clinical": {
                "age_approx": 55,
                "sex": "female",
                "diagnosis_1": "Benign",
                "diagnosis_2": "Benign melanocytic proliferations",
                "diagnosis_3": "Nevus",
                "melanocytic": True,
            },
        },
    }


def isic_handler(server, pages: list[list[dict]]):
    """Cursor paging as the archive does it: `next` carries a base64 cursor, count on page 1."""

    def handle(req):
        q = query_of(req.path)
        n = int(base64.b64decode(q["cursor"]).decode().split("=")[1]) if "cursor" in q else 0
        nxt = None
        if n + 1 < len(pages):
            cursor = base64.b64encode(f"p={n + 1}".encode()).decode()
            nxt = server.url(
                f"/api/v2/images/search/?cursor={cursor}&limit={q['limit']}&query={q['query']}"
            )
        body = {
            "count": sum(len(p) for p in pages) if n == 0 else None,
            "next": nxt,
            "previous": None,
            "results": pages[n],
        }
        send(req, 200, json.dumps(body), JSON)

    return handle


QUERIES = {"nodulocystic": 'diagnosis_3:"Nevus"'}


def isic_paths(server) -> list[str]:
    return [p for _, p, _ in server.requests if urlsplit(p).path == "/api/v2/images/search/"]


def test_isic_follows_next_cursor_until_null(httpserver):
    pages = [[isic_item(0), isic_item(1)], [isic_item(2, "CC-0")], [isic_item(3, "CC-BY-NC")]]
    httpserver.route("/api/v2/images/search/", handler=isic_handler(httpserver, pages))
    ctx = make_ctx("isic", httpserver.url("/api/v2/images/search/"), queries=QUERIES)
    found = list(IsicSource().candidates(ctx))
    assert [c.source_id for c in found] == [f"ISIC_{n:07d}" for n in range(4)]
    paths = isic_paths(httpserver)
    assert len(paths) == 3
    first = query_of(paths[0])
    assert first == {"query": 'diagnosis_3:"Nevus"', "limit": "100"}
    assert "cursor" in query_of(paths[1]) and "cursor" in query_of(paths[2])
    assert query_of(paths[1])["query"] == 'diagnosis_3:"Nevus"'  # not added a second time
    assert parse_qs(urlsplit(paths[1]).query)["query"] == ['diagnosis_3:"Nevus"']
    c = found[0]
    assert c.url == "https://content.isic-archive.com/ISIC_0000000.jpg?sig=x"
    assert c.page_url == httpserver.url("/images/ISIC_0000000/")
    assert c.author == c.attribution == "Hospital Italiano de Buenos Aires"
    assert c.licence_raw == {
        "copyright_license": "CC-BY",
        "attribution": "Hospital Italiano de Buenos Aires",
    }
    assert c.searched_class == "nodulocystic" and c.query == 'diagnosis_3:"Nevus"'
    assert c.tags == ["Benign", "Benign melanocytic proliferations", "Nevus"]
    assert (c.width, c.height) == (1022, 767)
    spdx = [normalise_fields(x.licence_raw, source="isic") for x in found]
    assert spdx == ["CC-BY-4.0", "CC-BY-4.0", "CC0-1.0", "CC-BY-NC-4.0"]


def test_isic_skips_unlisted_classes_and_respects_limits(httpserver):
    pages = [[isic_item(i) for i in range(3)], [isic_item(i) for i in range(3, 6)]]
    httpserver.route("/api/v2/images/search/", handler=isic_handler(httpserver, pages))
    # No queries: ISIC has no acne, nothing is searched.
    ctx = make_ctx("isic", httpserver.url("/api/v2/images/search/"))
    assert list(IsicSource().candidates(ctx)) == [] and not httpserver.requests
    # per_class 2 stops inside page 1; page_size is capped at 100; aliases name classes.
    ctx = make_ctx(
        "isic",
        httpserver.url("/api/v2/images/search/"),
        per_class=2,
        page_size=500,
        thumbnail=True,
        collections="66,70",
        queries={"papules": "image_type:clinical"},
    )
    found = list(IsicSource().candidates(ctx))
    assert len(found) == 2 and len(isic_paths(httpserver)) == 1
    assert found[0].searched_class == "papular"
    assert found[0].url.endswith("ISIC_0000000_t.jpg?sig=x") and found[0].width is None
    assert query_of(isic_paths(httpserver)[0]) == {
        "query": "image_type:clinical",
        "limit": "100",
        "collections": "66,70",
    }


def test_isic_bad_query_names_class_and_query(httpserver):
    detail = {"detail": "Invalid query: query could not be parsed"}
    httpserver.route("/api/v2/images/search/", status=400, body=json.dumps(detail), headers=JSON)
    ctx = make_ctx(
        "isic",
        httpserver.url("/api/v2/images/search/"),
        queries={"nodulocystic": "diagnosis:melanoma AND ("},
    )
    with pytest.raises(SourceError) as info:
        list(IsicSource().candidates(ctx))
    message = str(info.value)
    assert "'nodulocystic'" in message and "'diagnosis:melanoma AND ('" in message
    assert "could not be parsed" in message


def test_isic_configuration_errors(httpserver):
    url = httpserver.url("/api/v2/images/search/")
    with pytest.raises(SourceError, match="'rosacea', which is no class"):
        list(IsicSource().candidates(make_ctx("isic", url, queries={"rosacea": "x"})))
    with pytest.raises(SourceError, match="must be a table"):
        list(IsicSource().candidates(make_ctx("isic", url, queries="diagnosis_3:Nevus")))
    assert not httpserver.requests


def test_isic_malformed_responses(httpserver):
    ctx = make_ctx("isic", httpserver.url("/api/v2/images/search/"), queries=QUERIES)
    httpserver.route(
        "/api/v2/images/search/", status=404, body="<html><h1>Not Found</h1></html>", headers=HTML
    )
    with pytest.raises(SourceError, match="HTTP 404"):
        list(IsicSource().candidates(ctx))

    httpserver.route(
        "/api/v2/images/search/", body="<!doctype html><p>maintenance</p>", headers=HTML
    )
    with pytest.raises(SourceError, match="expected JSON, got text/html"):
        list(IsicSource().candidates(ctx))

    httpserver.route("/api/v2/images/search/", body=json.dumps([isic_item(0)]), headers=JSON)
    with pytest.raises(SourceError, match="count, next, previous, results"):
        list(IsicSource().candidates(ctx))

    no_files = {k: v for k, v in isic_item(1).items() if k != "files"}
    private = {**isic_item(2), "public": False}
    no_id = {k: v for k, v in isic_item(3).items() if k != "isic_id"}
    body = {
        "count": 5,
        "next": None,
        "previous": None,
        "results": [isic_item(0), no_files, private, no_id, None, isic_item(4)],
    }
    httpserver.route("/api/v2/images/search/", body=json.dumps(body), headers=JSON)
    assert [c.source_id for c in IsicSource().candidates(ctx)] == ["ISIC_0000000", "ISIC_0000004"]


def test_isic_repeated_cursor_stops(httpserver):
    def handle(req):
        body = {
            "count": None,
            "previous": None,
            "results": [isic_item(0)],
            "next": httpserver.url("/api/v2/images/search/?cursor=same"),
        }
        send(req, 200, json.dumps(body), JSON)

    httpserver.route("/api/v2/images/search/", handler=handle)
    ctx = make_ctx("isic", httpserver.url("/api/v2/images/search/"), queries=QUERIES)
    found = []
    with pytest.raises(SourceError, match="cursor repeats"):
        found.extend(IsicSource().candidates(ctx))
    assert len(found) == 2  # what was found before the loop was noticed is kept
    assert len(isic_paths(httpserver)) == 2


# --- Web page ---------------------------------------------------------------------------------

GALLERY = """<!doctype html>
<html><head>
<title>Papular acne gallery</title>
<base href="/media/">
<meta name="author" content="Dr. Page Author">
<link rel="license" href="https://creativecommons.org/licenses/by/4.0/">
</head><body>
<img src="a.jpg" srcset="a-320.jpg 320w, a-1280.jpg 1280w, a-640.jpg 640w" alt="Alt A">
<figure>
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="lazy.jpg" alt="lazy alt">
  <figcaption>Lazy <b>caption</b></figcaption>
</figure>
<figure>
  <a href="full/b.png"><img src="thumb/b-small.png" alt="thumb alt"></a>
  <figcaption>Figure B</figcaption>
  <a rel="license" href="https://creativecommons.org/licenses/by-sa/3.0/">CC BY-SA 3.0</a>
</figure>
<img src="pixel.gif" width="1" height="1">
<img src="logo.svg" alt="logo">
<img src="a-1280.jpg" alt="the same file again">
<img src="placeholder.gif" data-srcset="c-1x.jpg 1x, c-2x.jpg 2x" alt="C" title="title C">
<img src="/d.webp" title="Title D">
<a href="https://cdn.example.org/photos/e.JPG?size=large">download E</a>
<a href="/about.html">not an image</a>
<img>
<footer>
  <a rel="license" href="https://creativecommons.org/licenses/by/4.0/"><img
     src="https://i.creativecommons.org/l/by/4.0/88x31.png" alt="Creative Commons License"></a>
</footer>
</body></html>"""


def serve_pages(server, pages: dict[str, str]) -> None:
    for path, html in pages.items():
        server.route(path, body=html, headers=HTML)


def test_webpage_images_titles_and_licences(httpserver):
    serve_pages(httpserver, {"/gallery/index.html": GALLERY})
    page = httpserver.url("/gallery/index.html")
    ctx = make_ctx("webpage", pages=[page])
    source = WebPageSource()
    found = list(source.candidates(ctx))
    media = httpserver.url("/media/")
    assert [c.url for c in found] == [
        media + "a-1280.jpg",  # largest w in srcset, resolved against <base href>
        media + "lazy.jpg",  # data-src over the data: placeholder
        media + "full/b.png",  # the link's full-size file, not its thumbnail
        media + "c-2x.jpg",  # largest density in a lazy data-srcset
        httpserver.url("/d.webp"),
        "https://cdn.example.org/photos/e.JPG?size=large",
    ]
    by_url = {c.url.rsplit("/", 1)[-1]: c for c in found}
    assert by_url["a-1280.jpg"].title == "Alt A"
    assert by_url["lazy.jpg"].title == "Lazy caption"
    assert by_url["b.png"].title == "Figure B"
    assert by_url["c-2x.jpg"].title == "C"
    assert by_url["d.webp"].title == "Title D"
    assert by_url["e.JPG?size=large"].title == "download E"
    for c in found:
        assert c.source == "webpage" and c.source_id == c.url and c.page_url == page
        assert c.author == "Dr. Page Author"
        assert c.searched_class == "papular"  # from the page title
        assert c.label_hint is None  # inferred, not stated
        assert c.query == page
    # The page's licence for all, the figure's own for the image inside that figure.
    spdx = {k: normalise_fields(c.licence_raw) for k, c in by_url.items()}
    assert spdx.pop("b.png") == "CC-BY-SA-3.0"
    assert set(spdx.values()) == {"CC-BY-4.0"}
    assert by_url["b.png"].licence_raw == {
        "licence_url": "https://creativecommons.org/licenses/by-sa/3.0/",
        "licence": "CC BY-SA 3.0",
    }
    assert source.skipped == []


def test_webpage_sibling_figure_licence_does_not_leak(httpserver):
    html = """<html><head><title>Untitled</title></head><body><main>
      <figure><img src="/one.jpg"><a href="http://creativecommons.org/publicdomain/zero/1.0/"
        ><img src="https://licensebuttons.net/p/zero/1.0/88x31.png"></a></figure>
      <img src="/two.jpg" alt="two">
      <p>By <a rel="author" href="/who">Jo Writer</a></p>
    </main></body></html>"""
    serve_pages(httpserver, {"/p.html": html})
    found = list(WebPageSource().candidates(make_ctx("webpage", pages=[httpserver.url("/p.html")])))
    assert [c.url.rsplit("/", 1)[-1] for c in found] == ["one.jpg", "two.jpg"]
    assert normalise_fields(found[0].licence_raw) == "CC0-1.0"  # a CC badge link, no rel
    assert found[1].licence_raw == {}  # no page-level licence: NOASSERTION at the gate
    assert found[0].author == "Jo Writer"
    assert found[0].searched_class is None  # title names no class, no label given


@pytest.mark.parametrize(
    ("meta", "directive"),
    [
        ('<meta name="robots" content="noimageindex, follow">', "noimageindex"),
        ('<meta name="ROBOTS" content="index,noai">', "noai"),
        ('<meta name="acnedata" content="noimageai">', "noimageai"),
    ],
)
def test_webpage_meta_robots_page_yields_nothing(httpserver, meta, directive):
    html = f"<html><head>{meta}<title>x</title></head><body><img src='/a.jpg'></body></html>"
    serve_pages(httpserver, {"/blocked.html": html})
    url = httpserver.url("/blocked.html")
    source = WebPageSource()
    assert list(source.candidates(make_ctx("webpage", pages=[url]))) == []
    assert source.skipped == [(url, f"meta robots: {directive}")]


def test_webpage_x_robots_tag_and_non_html_pages(httpserver):
    httpserver.route(
        "/tagged.html",
        body="<img src='/a.jpg'>",
        headers={**HTML, "X-Robots-Tag": "acnedata: noai"},
    )
    httpserver.route("/photo.jpg", body=b"\xff\xd8\xff", headers={"Content-Type": "image/jpeg"})
    serve_pages(httpserver, {"/ok.html": "<img src='/ok.jpg'>"})
    urls = [httpserver.url(p) for p in ("/tagged.html", "/photo.jpg", "/ok.html")]
    source = WebPageSource()
    found = list(source.candidates(make_ctx("webpage", pages=urls)))
    assert [c.url for c in found] == [httpserver.url("/ok.jpg")]
    assert source.skipped == [
        (urls[0], "X-Robots-Tag: noai"),
        (urls[1], "not an HTML page (image/jpeg)"),
    ]


def test_webpage_robots_disallowed_page_is_not_fetched(httpserver):
    httpserver.route(
        "/robots.txt",
        body="User-agent: *\nDisallow: /private/\n",
        headers={"Content-Type": "text/plain"},
    )
    serve_pages(
        httpserver, {"/private/p.html": "<img src='/a.jpg'>", "/pub.html": "<img src=b.jpg>"}
    )
    private, public = httpserver.url("/private/p.html"), httpserver.url("/pub.html")
    source = WebPageSource()
    found = list(source.candidates(make_ctx("webpage", pages=[private, public])))
    assert [c.url for c in found] == [httpserver.url("/b.jpg")]
    assert source.skipped == [(private, "robots.txt disallows")]
    assert httpserver.counts["/private/p.html"] == 0


def test_webpage_refused_atlas_is_skipped_without_a_request(httpserver):
    source = WebPageSource()
    pages = ["https://dermnetnz.org/topics/acne", "https://www.dermis.net/dermisroot/en/x.htm"]
    found = list(source.candidates(make_ctx("webpage", pages=pages)))
    assert found == []
    assert [u for u, _ in source.skipped] == pages
    assert source.skipped[0][1].startswith("refused atlas: dermnetnz.org: DermNet NZ")
    assert "DermIS" in source.skipped[1][1]
    assert not httpserver.requests


def chain(n: int, *, link: str = "rel") -> dict[str, str]:
    """Pages /list/1.html … /list/n.html, each pointing at the next."""
    pages = {}
    for i in range(1, n + 1):
        nxt = ""
        if i < n:
            nxt = (
                f'<a rel="next" href="{i + 1}.html">2</a>'
                if link == "rel"
                else f'<a href="{i + 1}.html">Next &raquo;</a>'
            )
        pages[f"/list/{i}.html"] = f"<title>p{i}</title><img src='/img/{i}.jpg'>{nxt}"
    return pages


def test_webpage_pagination_is_optional_same_site_and_bounded(httpserver):
    pages = chain(8, link="text")
    serve_pages(httpserver, pages)
    seed = httpserver.url("/list/1.html")

    found = list(WebPageSource().candidates(make_ctx("webpage", pages=[seed])))
    assert [c.url for c in found] == [httpserver.url("/img/1.jpg")]  # off by default

    found = list(
        WebPageSource().candidates(
            make_ctx("webpage", pages=[seed], label="papules", follow_pagination=True)
        )
    )
    assert len(found) == 5  # max_pages defaults to 5
    assert all(c.page_url == httpserver.url(f"/list/{i + 1}.html") for i, c in enumerate(found))
    assert all(c.label_hint == c.searched_class == "papular" for c in found)
    assert all(c.query == seed for c in found)

    httpserver.counts.clear()
    found = list(
        WebPageSource().candidates(
            make_ctx("webpage", pages=[seed], max_pages=2, follow_pagination=True)
        )
    )
    assert len(found) == 2 and httpserver.counts["/list/3.html"] == 0

    # rel="next" to another host (localhost is the same server, another site) is not followed
    off_site = f"http://localhost:{httpserver.port}/list/2.html"
    serve_pages(httpserver, {"/x.html": f"<img src='/x.jpg'><link rel='next' href='{off_site}'>"})
    httpserver.counts.clear()
    found = list(
        WebPageSource().candidates(
            make_ctx("webpage", pages=[httpserver.url("/x.html")], follow_pagination=True)
        )
    )
    assert len(found) == 1 and httpserver.counts["/list/2.html"] == 0


def test_webpage_pagination_loop_and_limit(httpserver):
    serve_pages(
        httpserver,
        {
            "/a.html": "<img src='/1.jpg'><img src='/2.jpg'><a rel='next' href='/b.html'>b</a>",
            "/b.html": "<img src='/2.jpg'><img src='/3.jpg'><a rel='next' href='/a.html'>a</a>",
        },
    )
    ctx = make_ctx("webpage", pages=[httpserver.url("/a.html")], follow_pagination=True)
    found = list(WebPageSource().candidates(ctx))
    assert [c.url.rsplit("/", 1)[-1] for c in found] == ["1.jpg", "2.jpg", "3.jpg"]
    assert httpserver.counts["/a.html"] == 1 and httpserver.counts["/b.html"] == 1
    ctx = make_ctx(
        "webpage", pages=[httpserver.url("/a.html")], follow_pagination=True, per_class=2
    )
    assert len(list(WebPageSource().candidates(ctx))) == 2


def test_webpage_pages_table_and_failures(httpserver):
    serve_pages(httpserver, {"/n.html": "<img src='/n.jpg'>"})
    ok, missing = httpserver.url("/n.html"), httpserver.url("/gone.html")
    source = WebPageSource()
    ctx = make_ctx("webpage", pages={"nodulocystic": [missing, ok]})
    found = list(source.candidates(ctx))
    assert [(c.url, c.label_hint) for c in found] == [(httpserver.url("/n.jpg"), "nodulocystic")]
    assert source.skipped[0][0] == missing and "HTTP 404" in source.skipped[0][1]

    with pytest.raises(SourceError, match=r"no page could be used.*gone\.html.*HTTP 404"):
        list(WebPageSource().candidates(make_ctx("webpage", pages=[missing])))
    with pytest.raises(SourceError, match="'acne', which is no class"):
        list(WebPageSource().candidates(make_ctx("webpage", pages={"acne": [ok]})))
    with pytest.raises(SourceError, match="label = 'acne' is no class"):
        list(WebPageSource().candidates(make_ctx("webpage", pages=[ok], label="acne")))
    with pytest.raises(SourceError, match="needs pages"):
        list(WebPageSource().candidates(make_ctx("webpage")))
    # without pages, base_url is the one page
    assert len(list(WebPageSource().candidates(make_ctx("webpage", ok)))) == 1


def test_srcset_parsing():
    assert parse_srcset("a.jpg 1x, b.jpg 2x") == [("a.jpg", "1x"), ("b.jpg", "2x")]
    assert parse_srcset("a.jpg, b.jpg 2x") == [("a.jpg", ""), ("b.jpg", "2x")]
    assert parse_srcset("a.jpg,, b.jpg") == [("a.jpg", ""), ("b.jpg", "")]
    # per the HTML rules a comma without a following space is part of the URL
    assert parse_srcset("a.jpg,b.jpg 2x") == [("a.jpg,b.jpg", "2x")]
    # a comma inside a URL (image CDNs use them) does not split it
    pairs = parse_srcset(
        "https://cdn/x/w_400,h_300/a.jpg 400w, https://cdn/x/w_800,h_600/a.jpg 800w"
    )
    assert [u for u, _ in pairs] == [
        "https://cdn/x/w_400,h_300/a.jpg",
        "https://cdn/x/w_800,h_600/a.jpg",
    ]
    assert largest(pairs) == "https://cdn/x/w_800,h_600/a.jpg"
    assert largest(parse_srcset("small.jpg, big.jpg 3x, mid.jpg 1.5x")) == "big.jpg"
    assert largest([]) is None


def test_bad_integer_options_are_source_errors(httpserver):
    ctx = make_ctx("openverse", httpserver.url("/v1/images/"), page_size="lots")
    with pytest.raises(SourceError, match=r"\[sources.openverse\] page_size must be a whole"):
        list(OpenverseSource().candidates(ctx))
    ctx = make_ctx("isic", httpserver.url("/"), page_size=-5, queries=QUERIES)
    with pytest.raises(SourceError, match="page_size must be a whole number, got -5"):
        list(IsicSource().candidates(ctx))
    ctx = make_ctx("webpage", pages=["http://x/"], follow_pagination=True, max_pages=2.5)
    with pytest.raises(SourceError, match="max_pages"):
        list(WebPageSource().candidates(ctx))
    assert not httpserver.requests
