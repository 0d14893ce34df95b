"""Portals against a real local server: Zenodo, HF, data.go.kr (odcloud), Kaggle (both), AI Hub."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from httpserver import Reply, send

from acnedata.errors import SourceError
from acnedata.http import HttpConfig, PoliteSession
from acnedata.portals import PORTALS
from acnedata.portals.aihub import AiHubPortal
from acnedata.portals.base import PortalContext, PortalHit
from acnedata.portals.datagokr import DataGoKrPortal
from acnedata.portals.huggingface import HuggingFacePortal
from acnedata.portals.kaggle import KagglePortal
from acnedata.portals.skip import PortalSkipped
from acnedata.portals.zenodo import ZenodoPortal
from acnedata.spec import load_spec, parse_spec

JSON = {"Content-Type": "application/json"}
BUILTIN = load_spec("acne-l70")  # the policy every verdict below is judged against


def make_spec(name: str, base_url: str, **options):
    raw = {
        "name": "t",
        "keywords": options.pop("keywords", ["acne"]),
        "policy": options.pop("policy", BUILTIN.policy.as_dict()),
        "network": {"allow_private": True, "min_interval": 0.0, "max_retries": 0},
        "sources": {name: {"base_url": base_url, **options}},
        "classes": [{"name": "papular"}],
    }
    return parse_spec(raw, where="test.toml")


def run(portal, name: str, base_url: str, **options) -> list[PortalHit]:
    spec = make_spec(name, base_url, **options)
    with PoliteSession(HttpConfig.from_spec(spec)) as session:
        hits = portal.search(PortalContext(spec, spec.sources[name], session))
    return [h.judge(spec) for h in hits]


def by_name(hits: list[PortalHit]) -> dict[str, PortalHit]:
    return {h.name: h for h in hits}


def query_of(path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


# --- Zenodo ---------------------------------------------------------------------------------


def zenodo_record(rid: int, licence: str, files=("images.zip",)) -> dict:
    return {
        "id": rid,
        "doi": f"10.5281/zenodo.{rid}",
        "links": {"self_html": f"https://zenodo.org/records/{rid}"},
        "metadata": {
            "title": f"Acne set {rid}",
            "license": {"id": licence},
            "resource_type": {"type": "dataset"},
        },
        "files": [
            {"key": f, "size": 1000, "links": {"self": f"https://zenodo.org/{rid}/{f}/content"}}
            for f in files
        ],
    }


def test_zenodo_follows_links_next_and_judges(httpserver):
    def handle(req):
        page = int(query_of(req.path).get("page", 1))
        records = (
            [zenodo_record(1, "cc-by-4.0")] if page == 1 else [zenodo_record(2, "cc-by-nc-nd-4.0")]
        )
        body = {"hits": {"total": 2, "hits": records}, "links": {}}
        if page == 1:
            body["links"]["next"] = httpserver.url("/api/records?page=2&q=acne&size=25")
        send(req, 200, json.dumps(body), JSON)

    httpserver.route("/api/records", handler=handle)
    hits = by_name(run(ZenodoPortal(), "zenodo", httpserver.url("/api/records")))
    assert httpserver.counts["/api/records"] == 2
    good, nd = hits["10.5281/zenodo.1"], hits["10.5281/zenodo.2"]
    assert (good.spdx, good.fits, good.size) == ("CC-BY-4.0", True, 1000)
    assert (nd.spdx, nd.fits) == ("CC-BY-NC-ND-4.0", False)
    assert "non-commercial" in nd.reason


def test_zenodo_html_error_page_is_one_line(httpserver):
    httpserver.route(
        "/api/records", 200, "<html><body>Maintenance</body></html>", {"Content-Type": "text/html"}
    )
    with pytest.raises(SourceError) as exc:
        run(ZenodoPortal(), "zenodo", httpserver.url("/api/records"))
    assert "expected JSON, got text/html" in one_line(exc)


# --- Hugging Face ---------------------------------------------------------------------------


def hf_repo(rid: str, *tags: str) -> dict:
    return {"id": rid, "tags": ["task_categories:image-classification", *tags]}


def test_huggingface_link_header_paging_and_verdicts(httpserver):
    first = [
        hf_repo("org/acne-by", "license:cc-by-4.0"),
        hf_repo("org/acne-nd", "license:cc-by-nc-nd-4.0"),
    ]
    second = [
        hf_repo("org/acne-unknown", "license:unknown"),
        {"id": "org/text-only", "tags": ["license:cc0-1.0"]},
    ]

    def handle(req):
        if query_of(req.path).get("cursor") == "abc":
            send(req, 200, json.dumps(second), JSON)
        else:
            link = f'<{httpserver.url("/api/datasets?search=acne&cursor=abc")}>; rel="next"'
            send(req, 200, json.dumps(first), {**JSON, "Link": link})

    httpserver.route("/api/datasets", handler=handle)
    hits = by_name(run(HuggingFacePortal(), "huggingface", httpserver.url("/api/datasets")))
    assert httpserver.counts["/api/datasets"] == 2
    assert hits["org/acne-by"].fits and hits["org/acne-by"].spdx == "CC-BY-4.0"
    assert not hits["org/acne-nd"].fits
    unknown = hits["org/acne-unknown"]
    assert (unknown.spdx, unknown.fits, unknown.decision) == ("NOASSERTION", False, "reject")
    text_only = hits["org/text-only"]
    assert text_only.decision == "allow" and not text_only.fits
    assert text_only.reason == "licence allowed, but this is not image data"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, json.dumps({"error": "unexpected"}), "expected a JSON array"),
        (401, json.dumps({"error": "Invalid token"}), "HTTP 401"),
        (403, "<html>Forbidden</html>", "check the credentials"),
    ],
)
def test_huggingface_malformed_answers_are_source_errors(httpserver, status, body, expected):
    httpserver.route("/api/datasets", status, body, JSON)
    with pytest.raises(SourceError) as exc:
        run(HuggingFacePortal(), "huggingface", httpserver.url("/api/datasets"))
    assert expected in one_line(exc)


# --- data.go.kr (odcloud) -------------------------------------------------------------------

DATAGOKR_PATH = "/api/15077093/v1/dataset"


def odcloud_row(n: int, **extra) -> dict:
    return {
        "list_id": 15000000 + n,
        "title": f"여드름 데이터 {n}",
        "org_nm": "기관",
        "page_url": f"https://www.data.go.kr/data/{15000000 + n}/fileData.do",
        **extra,
    }


def test_datagokr_pages_by_match_count_and_keeps_rights_fields(httpserver, monkeypatch):
    # The "Encoding" key from the portal is decoded once, so it arrives as the real key.
    monkeypatch.setenv("DATA_GO_KR_SERVICE_KEY", "k3y%2Fwith%2Bchars")
    rows = [
        odcloud_row(1, ext="JPG", keywords="피부,여드름", 이용허락범위="이용허락범위 제한 없음"),
        odcloud_row(2, keywords=["피부", "사진"], 이용허락범위="공공누리 제4유형"),
        odcloud_row(3, data_format="CSV", is_copyrighted="N", use_prmisn_ennc="없음"),
    ]

    def handle(req):
        q = query_of(req.path)
        page, per = int(q["page"]), int(q["perPage"])
        data = rows[(page - 1) * per : page * per]
        body = {
            "page": page,
            "perPage": per,
            "totalCount": 900,
            "currentCount": len(data),
            "matchCount": len(rows),
            "data": data,
        }
        send(req, 200, json.dumps(body, ensure_ascii=False), JSON)

    httpserver.route(DATAGOKR_PATH, handler=handle)
    hits = by_name(
        run(
            DataGoKrPortal(),
            "datagokr",
            httpserver.url(DATAGOKR_PATH),
            keywords=["여드름"],
            perPage=2,
        )
    )
    # 3 matches, 2 per page: the second page completes the count, so no third request.
    assert httpserver.counts[DATAGOKR_PATH] == 2
    q = query_of(httpserver.requests[0][1])
    assert q["serviceKey"] == "k3y/with+chars" and q["returnType"] == "JSON"
    assert q["cond[title::LIKE]"] == "여드름" and q["page"] == "1" and q["perPage"] == "2"
    free, kogl4, csv_only = hits["15000001"], hits["15000002"], hits["15000003"]
    assert free.spdx == "LicenseRef-KR-PublicData-Unrestricted" and free.fits
    assert free.url == "https://www.data.go.kr/data/15000001/fileData.do"
    assert kogl4.spdx == "LicenseRef-KOGL-Type-4" and kogl4.is_image_data and not kogl4.fits
    assert csv_only.licence_raw == {"is_copyrighted": "N", "use_prmisn_ennc": "없음"}
    assert (csv_only.spdx, csv_only.is_image_data) == ("NOASSERTION", False)


def test_datagokr_without_match_count_stops_at_short_page(httpserver, monkeypatch):
    monkeypatch.setenv("MY_KEY", "abc")
    monkeypatch.delenv("DATA_GO_KR_SERVICE_KEY", raising=False)
    replies = [
        Reply(200, json.dumps({"data": [odcloud_row(1), odcloud_row(2)]}), JSON),
        Reply(200, json.dumps({"data": [{"id": 77, "title": "x"}]}), JSON),
    ]
    httpserver.route(DATAGOKR_PATH, replies=replies)
    hits = by_name(
        run(
            DataGoKrPortal(),
            "datagokr",
            httpserver.url(DATAGOKR_PATH),
            perPage=2,
            service_key_env="MY_KEY",
        )
    )
    assert httpserver.counts[DATAGOKR_PATH] == 2
    assert hits["77"].url == "https://www.data.go.kr/data/77/openapi.do"


@pytest.mark.parametrize("status", [200, 401])
def test_datagokr_unregistered_service_names_the_fix(httpserver, monkeypatch, status):
    monkeypatch.setenv("DATA_GO_KR_SERVICE_KEY", "secret-key")
    body = json.dumps({"code": -3, "msg": "등록되지 않은 서비스입니다."}, ensure_ascii=False)
    httpserver.route(DATAGOKR_PATH, status, body, JSON)
    with pytest.raises(SourceError) as exc:
        run(DataGoKrPortal(), "datagokr", httpserver.url(DATAGOKR_PATH))
    text = one_line(exc)
    assert "15077093" in text and "apply" in text and "secret-key" not in text
    if status == 200:
        assert "-3" in text and "등록되지 않은 서비스" in text


def test_datagokr_wrong_shape_and_missing_key(httpserver, monkeypatch):
    monkeypatch.setenv("DATA_GO_KR_SERVICE_KEY", "k")
    httpserver.route(DATAGOKR_PATH, 200, json.dumps([1, 2]), JSON)
    with pytest.raises(SourceError) as exc:
        run(DataGoKrPortal(), "datagokr", httpserver.url(DATAGOKR_PATH))
    assert "not an odcloud catalogue response" in one_line(exc)
    monkeypatch.delenv("DATA_GO_KR_SERVICE_KEY")
    with pytest.raises(PortalSkipped) as exc:
        run(DataGoKrPortal(), "datagokr", httpserver.url(DATAGOKR_PATH))
    assert one_line(exc) == "no DATA_GO_KR_SERVICE_KEY in the environment; skipped"
    assert httpserver.counts[DATAGOKR_PATH] == 1  # the skipped portal asked nothing


def test_collector_records_a_skipped_portal_as_one_note(httpserver, monkeypatch, tmp_path):
    from acnedata.pipeline import Collector

    monkeypatch.delenv("DATA_GO_KR_SERVICE_KEY", raising=False)
    monkeypatch.setitem(PORTALS, "datagokr", DataGoKrPortal)  # what the lead registers
    spec = make_spec("datagokr", httpserver.url(DATAGOKR_PATH))
    with Collector(spec, tmp_path) as col:
        report = col.check_portals()
    assert report.skipped == ["datagokr: no DATA_GO_KR_SERVICE_KEY in the environment; skipped"]
    assert report.hits == []


# --- Kaggle ---------------------------------------------------------------------------------

LIST_PATH = "/v1/datasets.DatasetApiService/ListDatasets"
LEGACY_PATH = "/api/v1/datasets/list"


def kaggle_item(ref: str, licence: str, title: str = "Acne types", **extra) -> dict:
    return {
        "id": 1,
        "ref": ref,
        "title": title,
        "subtitle": "Labelled acne photos",
        "totalBytes": 47033585,
        "licenseName": licence,
        "tags": [{"ref": "image", "name": "image"}],
        **extra,
    }


@pytest.fixture
def no_kaggle_credentials(monkeypatch, tmp_path):
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    return tmp_path / "kaggle-config"


def test_kaggle_current_posts_json_with_bearer(httpserver, monkeypatch, no_kaggle_credentials):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok123")
    pages = {
        1: {
            "datasets": [
                kaggle_item("a/acne-cc0", "CC0: Public Domain"),
                kaggle_item("b/dermnet", "CC0: Public Domain", title="DermNet images"),
            ]
        },
        2: {
            "datasets": [
                kaggle_item(
                    "c/acne-db",
                    "Database: Open Database, Contents: © Original Authors",
                    totalBytes="123",
                )
            ]
        },
        3: {},  # protobuf JSON drops an empty list: the end
    }

    def handle(req):
        body = json.loads(httpserver.bodies[-1])  # the server has read it already
        send(req, 200, json.dumps(pages[body["page"]]), JSON)

    httpserver.route(LIST_PATH, handler=handle)
    hits = by_name(run(KagglePortal(), "kaggle", httpserver.url("/v1"), max_pages=5))
    assert httpserver.counts[LIST_PATH] == 3
    assert [json.loads(b) for b in httpserver.bodies] == [
        {"search": "acne", "page": 1},
        {"search": "acne", "page": 2},
        {"search": "acne", "page": 3},
    ]
    method, _, headers = httpserver.requests[0]
    assert method == "POST" and headers["Authorization"] == "Bearer tok123"
    cc0 = hits["a/acne-cc0"]
    assert (cc0.spdx, cc0.fits, cc0.size, cc0.is_image_data) == ("CC0-1.0", True, 47033585, True)
    assert cc0.url == "https://www.kaggle.com/datasets/a/acne-cc0"
    dermnet = hits["b/dermnet"]
    assert dermnet.spdx == "CC0-1.0" and not dermnet.fits and dermnet.decision == "review"
    assert dermnet.reason.startswith(
        "likely a re-upload of a copyrighted atlas (DermNet); check provenance"
    )
    assert dermnet.as_dict()["reason"] == dermnet.reason  # survives into portals.json
    db = hits["c/acne-db"]
    assert not db.fits and db.size == 123


def test_kaggle_legacy_gets_array_with_basic_auth_from_kaggle_json(
    httpserver, no_kaggle_credentials
):
    no_kaggle_credentials.mkdir()
    (no_kaggle_credentials / "kaggle.json").write_text(
        json.dumps({"username": "jane", "key": "s3cret"}), encoding="utf-8"
    )

    def handle(req):
        page = int(query_of(req.path)["page"])
        send(req, 200, json.dumps([kaggle_item(f"o/acne-{page}", "CC BY-SA 4.0")]), JSON)

    httpserver.route(LEGACY_PATH, handler=handle)
    hits = run(KagglePortal(), "kaggle", httpserver.url("/api/v1"), api="legacy", max_pages=2)
    assert httpserver.counts[LEGACY_PATH] == 2  # never empty: stops at max_pages
    method, path, headers = httpserver.requests[0]
    assert method == "GET" and query_of(path) == {"search": "acne", "page": "1"}
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"jane:s3cret").decode()
    assert sorted(h.name for h in hits) == ["o/acne-1", "o/acne-2"]
    assert all(h.spdx == "CC-BY-SA-4.0" and h.fits for h in hits)


def test_kaggle_env_username_key_and_empty_page(httpserver, monkeypatch, no_kaggle_credentials):
    monkeypatch.setenv("KAGGLE_USERNAME", "bo")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    httpserver.route(LEGACY_PATH, 200, "[]", JSON)
    assert run(KagglePortal(), "kaggle", httpserver.url("/api/v1"), api="legacy") == []
    assert httpserver.counts[LEGACY_PATH] == 1
    auth = httpserver.requests[0][2]["Authorization"]
    assert auth == "Basic " + base64.b64encode(b"bo:k").decode()


def test_kaggle_without_credentials_is_skipped(httpserver, no_kaggle_credentials):
    with pytest.raises(PortalSkipped) as exc:
        run(KagglePortal(), "kaggle", httpserver.url("/v1"))
    assert one_line(exc).endswith("; skipped")
    no_kaggle_credentials.mkdir()
    (no_kaggle_credentials / "kaggle.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PortalSkipped) as exc:
        run(KagglePortal(), "kaggle", httpserver.url("/v1"))
    assert "kaggle.json is not readable JSON" in one_line(exc)
    assert not httpserver.requests


@pytest.mark.parametrize(
    ("api", "path", "status", "body", "expected"),
    [
        ("current", LIST_PATH, 200, "[]", "not a Kaggle ListDatasets response"),
        ("current", LIST_PATH, 200, '{"results": []}', "not a Kaggle ListDatasets response"),
        ("legacy", LEGACY_PATH, 200, '{"datasets": []}', "expected a JSON array"),
        ("current", LIST_PATH, 401, '{"message": "Unauthenticated"}', "check the credentials"),
        ("legacy", LEGACY_PATH, 200, "<!doctype html><p>Sign in</p>", "expected JSON"),
    ],
)
def test_kaggle_malformed_answers(
    httpserver, monkeypatch, no_kaggle_credentials, api, path, status, body, expected
):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "t")
    httpserver.route(
        path, status, body, JSON if body[:1] in "[{" else {"Content-Type": "text/html"}
    )
    with pytest.raises(SourceError) as exc:
        run(
            KagglePortal(),
            "kaggle",
            httpserver.url("/v1" if api == "current" else "/api/v1"),
            api=api,
        )
    assert expected in one_line(exc)


# --- AI Hub ---------------------------------------------------------------------------------

CATALOGUE = """datasetkey,name

71345, 안면 피부 여드름 이미지
576,한국어 음성
\ufeff
508, Acne severity photo set
90001, 피부 질환 진단 영상
"""


@pytest.mark.parametrize("encoding", ["cp949", "utf-8-sig"])
def test_aihub_plain_text_catalogue(httpserver, encoding):
    text = CATALOGUE.replace("\ufeff", "") if encoding == "cp949" else CATALOGUE
    httpserver.route("/info/dataset.do", 200, text.encode(encoding), {"Content-Type": "text/plain"})
    hits = by_name(
        run(AiHubPortal(), "aihub", httpserver.url("/info/dataset.do"), keywords=["여드름", "ACNE"])
    )
    assert sorted(hits) == ["508", "71345"]
    korean = hits["71345"]
    assert korean.title == "안면 피부 여드름 이미지" and korean.is_image_data
    assert korean.url == "https://www.aihub.or.kr/aihubdata/data/view.do?dataSetSn=71345"
    assert korean.spdx == "LicenseRef-AIHub-Terms" and not korean.fits  # acne-l70 does not list it
    assert "training only, no redistribution; manual approval" in korean.reason


def test_aihub_fits_only_when_the_policy_lists_its_terms(httpserver):
    httpserver.route("/info/dataset.do", 200, CATALOGUE.encode("utf-8"))
    policy = {**BUILTIN.policy.as_dict(), "allow": ["LicenseRef-AIHub-Terms"]}
    hits = by_name(
        run(
            AiHubPortal(),
            "aihub",
            httpserver.url("/info/dataset.do"),
            keywords=["여드름"],
            policy=policy,
        )
    )
    hit = hits["71345"]
    assert hit.fits and hit.decision == "allow"
    assert "training only, no redistribution; manual approval" in hit.reason


def test_aihub_html_page_is_a_source_error(httpserver):
    httpserver.route(
        "/info/dataset.do",
        200,
        "<!DOCTYPE html><html>로그인</html>",
        {"Content-Type": "text/html; charset=utf-8"},
    )
    with pytest.raises(SourceError) as exc:
        run(AiHubPortal(), "aihub", httpserver.url("/info/dataset.do"))
    assert "got an HTML page" in one_line(exc)
