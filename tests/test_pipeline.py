"""The stages wired together against a real local server: resume, licences, dupes, conflicts."""

import io
import json
from pathlib import Path

import pytest
from imagefactory import make_image

from acnedata.catalog import Catalog
from acnedata.errors import NetworkError, SourceError
from acnedata.manifest import load_manifest
from acnedata.pipeline import Collector, NullReporter
from acnedata.sources import SOURCES
from acnedata.sources.base import Candidate
from acnedata.spec import load_spec


def jpeg(i: int, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    make_image(i, size=(96, 96)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def serve_images(server, n: int) -> list[str]:
    paths = []
    for i in range(n):
        path = f"/img/{i}.jpg"
        server.route(path, body=jpeg(i), headers={"Content-Type": "image/jpeg"})
        paths.append(path)
    server.route(
        "/robots.txt",
        body="User-agent: *\nDisallow: /private/\n",
        headers={"Content-Type": "text/plain"},
    )
    return paths


def write_spec(folder: Path, rows: list[dict], processes: int | None = None, **policy) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "urls.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    noassertion = policy.get("noassertion", "reject")
    (folder / "spec.toml").write_text(
        f"""
name = "pipeline-test"
[policy]
allow = ["CC0-1.0", "CC-BY-*", "CC-BY-SA-*"]
noassertion = "{noassertion}"
[limits]
min_width = 32
min_height = 32
[network]
allow_private = true
min_interval = 0.0
max_retries = 0
{"" if processes is None else f"processes = {processes}"}
[sources.urllist]
path = "urls.jsonl"
[[classes]]
name = "papular"
[[classes]]
name = "pustular"
""",
        encoding="utf-8",
    )
    return folder / "spec.toml"


def rows_for(server, paths, label="papular", licence="CC BY 4.0"):
    return [
        {
            "url": server.url(p),
            "licence": licence,
            "label": label,
            "author": f"A{i}",
            "page_url": server.url(f"/page/{i}"),
            "title": f"img {i}",
        }
        for i, p in enumerate(paths)
    ]


class StopAfter(NullReporter):
    """Simulates Ctrl-C in the middle of the download stage."""

    def __init__(self, n: int):
        self.n = n

    def stage(self, name, total=None):
        reporter = self

        class Progress:
            done = 0

            def advance(self, k=1):
                if name == "download":
                    Progress.done += k
                    if Progress.done >= reporter.n:
                        raise KeyboardInterrupt

            def set_total(self, total):
                pass

        from contextlib import nullcontext

        return nullcontext(Progress())


@pytest.mark.parametrize("processes", [0, 2], ids=["in-thread", "store-processes"])
def test_interrupted_run_resumes_without_a_second_download(httpserver, tmp_path, processes):
    paths = serve_images(httpserver, 12)
    rows = rows_for(httpserver, paths)
    spec_a = load_spec(write_spec(tmp_path / "a", rows, processes=processes))
    with (
        Collector(spec_a, tmp_path / "a" / "out", reporter=StopAfter(5)) as col,
        pytest.raises(KeyboardInterrupt),
    ):
        col.collect()
    # The run stopped in the download stage. With store processes the fetch threads may have
    # fetched every image before the fifth was stored, so only the lower bound is fixed.
    fetched_first = {p: httpserver.counts[p] for p in paths}
    assert 5 <= sum(fetched_first.values()) <= 12
    out = tmp_path / "a" / "out"
    assert not (out / "manifest.json").exists()
    # Saved by the first run: committed to the catalog, or stored and in the journal (the next
    # run adopts those). A download still under way INTERRUPT_GRACE after Ctrl-C was cut: it
    # is fetched again, like one that never started.
    with Catalog(out / "catalog.sqlite") as cat:
        saved = {r["url"] for r in cat.items() if r["state"] == "stored"}
    journal = out / "download.journal"
    if journal.exists():
        saved |= {json.loads(ln)["url"] for ln in journal.read_text().splitlines() if ln}
    assert len(saved) >= 5
    with Collector(spec_a, out) as col:
        summary = col.collect()
    assert summary.per_class == {"papular": 12, "pustular": 0}
    # what the first run saved was never fetched again, and everything else exactly once more
    again = {p: httpserver.counts[p] - fetched_first[p] for p in paths}
    assert again == {p: 0 if httpserver.url(p) in saved else 1 for p in paths}
    # an uninterrupted run gives the same manifest items
    spec_b = load_spec(write_spec(tmp_path / "b", rows))
    with Collector(spec_b, tmp_path / "b" / "out") as col:
        col.collect()

    def essence(folder):
        m = load_manifest(folder / "manifest.json")
        return sorted((i["id"], i["sha256"], i["label"], i["cluster"]) for i in m.items)

    assert essence(tmp_path / "a" / "out") == essence(tmp_path / "b" / "out")
    # a third run changes nothing and downloads nothing
    before = httpserver.counts.copy()
    with Collector(spec_a, tmp_path / "a" / "out") as col:
        col.collect()
    assert all(httpserver.counts[p] == before[p] for p in paths)


def test_licences_duplicates_failures_and_conflicts(httpserver, tmp_path):
    paths = serve_images(httpserver, 6)
    httpserver.route("/img/dup.jpg", body=jpeg(0), headers={"Content-Type": "image/jpeg"})
    httpserver.route(
        "/img/near.jpg", body=jpeg(1, quality=60), headers={"Content-Type": "image/jpeg"}
    )
    httpserver.route("/img/cross.jpg", body=jpeg(2), headers={"Content-Type": "image/jpeg"})
    httpserver.route(
        "/img/html.jpg",
        body=b"<html><body>not an image</body></html>",
        headers={"Content-Type": "image/jpeg"},
    )
    httpserver.route("/img/corrupt.jpg", body=jpeg(3)[:400], headers={"Content-Type": "image/jpeg"})
    httpserver.route("/private/x.jpg", body=jpeg(4), headers={"Content-Type": "image/jpeg"})
    rows = rows_for(httpserver, paths)
    rows += [
        {"url": httpserver.url("/img/dup.jpg"), "licence": "CC0", "label": "papular"},
        {"url": httpserver.url("/img/near.jpg"), "licence": "CC BY-SA 3.0", "label": "papular"},
        {"url": httpserver.url("/img/cross.jpg"), "licence": "CC0", "label": "pustular"},
        {"url": httpserver.url("/img/html.jpg"), "licence": "CC0", "label": "papular"},
        {"url": httpserver.url("/img/corrupt.jpg"), "licence": "CC0", "label": "papular"},
        {"url": httpserver.url("/private/x.jpg"), "licence": "CC0", "label": "papular"},
        {"url": httpserver.url("/img/nd.jpg"), "licence": "CC BY-NC-ND 4.0", "label": "papular"},
        {
            "url": httpserver.url("/img/none.jpg"),
            "licence": "all rights reserved",
            "label": "papular",
        },
    ]
    out = tmp_path / "out"
    with Collector(load_spec(write_spec(tmp_path, rows)), out) as col:
        s = col.collect()
        cat: Catalog = col.catalog
        by_url = {r["url"].rsplit("/", 1)[-1]: r for r in cat.items("1")}
    assert by_url["nd.jpg"]["state"] == "rejected"
    assert "CC-BY-NC-ND-4.0" in by_url["nd.jpg"]["verdict_reason"]
    assert by_url["none.jpg"]["spdx"] == "NOASSERTION"
    assert by_url["none.jpg"]["state"] == "rejected"
    assert httpserver.counts["/img/nd.jpg"] == 0  # rejected items are never downloaded
    assert by_url["html.jpg"]["state"] == "failed"
    assert "HTML" in by_url["html.jpg"]["reason"]
    assert by_url["corrupt.jpg"]["state"] == "failed"
    assert by_url["x.jpg"]["reason"] == "robots.txt disallows"
    assert httpserver.counts["/private/x.jpg"] == 0
    assert by_url["dup.jpg"]["cluster"] == by_url["0.jpg"]["cluster"]
    assert by_url["near.jpg"]["cluster"] == by_url["1.jpg"]["cluster"]
    assert by_url["cross.jpg"]["cluster"] == by_url["2.jpg"]["cluster"]
    assert s.duplicates == 3
    assert s.conflicts == 1  # image 2 was filed as papular and as pustular
    m = load_manifest(out / "manifest.json")
    ids = {i["source"]["url"].rsplit("/", 1)[-1] for i in m.items}
    assert ids == {"0.jpg", "1.jpg", "3.jpg", "4.jpg", "5.jpg"} | ({"dup.jpg"} & ids)
    assert "2.jpg" not in ids and "cross.jpg" not in ids
    assert len({i["cluster"] for i in m.items}) == len(m.items)
    for item in m.items:
        assert item["licence"]["spdx"] in ("CC-BY-4.0", "CC0-1.0", "CC-BY-SA-3.0")
        assert (out / item["file"]).is_file()
    credits = (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "A0" in credits and "CC BY 4.0" in credits
    assert (out / "attribution.csv").is_file()


def test_noassertion_to_review_is_downloaded_but_kept_out(httpserver, tmp_path):
    paths = serve_images(httpserver, 2)
    rows = rows_for(httpserver, paths[:1]) + rows_for(httpserver, paths[1:], licence="")
    out = tmp_path / "out"
    with Collector(load_spec(write_spec(tmp_path, rows, noassertion="review")), out) as col:
        s = col.collect()
    assert s.review == 1
    assert [i["source"]["url"] for i in load_manifest(out / "manifest.json").items] == [
        httpserver.url(paths[0])
    ]


def test_unreachable_host_is_one_clear_error(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the with-block ends: nothing listens there
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        f"""
name = "x"
[network]
allow_private = true
min_interval = 0.0
max_retries = 0
[sources.commons]
base_url = "http://127.0.0.1:{port}/w/api.php"
[[classes]]
name = "a"
""",
        encoding="utf-8",
    )
    with (
        Collector(load_spec(spec_file), tmp_path / "out") as col,
        pytest.raises(NetworkError) as err,
    ):
        col.collect()
    assert f"127.0.0.1:{port}" in str(err.value) and "cannot connect" in str(err.value)
    assert "\n" not in str(err.value)


def test_public_api_without_contact_is_refused_before_any_request(tmp_path):
    with (
        Collector(load_spec("acne-l70"), tmp_path / "out") as col,
        pytest.raises(NetworkError, match="no contact given"),
    ):
        col.collect()
    assert col.session.request_count() == 0


class _FailsMidway:
    """A source that finds 120 candidates (20 of them twice), then fails."""

    name = "urllist"

    def candidates(self, ctx):
        for n in range(120):
            url = f"http://h/{n % 100}.jpg"
            yield Candidate(source="urllist", source_id=url, url=url, searched_class="papular")
        raise SourceError("the server went away")


def test_a_source_that_fails_midway_keeps_what_it_found(tmp_path, monkeypatch):
    monkeypatch.setitem(SOURCES, "urllist", _FailsMidway)
    with Collector(load_spec(write_spec(tmp_path, [])), tmp_path / "out") as col:
        assert col.search() == {"new": 100, "again": 20}
        assert col.catalog.count() == 100
        assert col.catalog.get_meta("source_errors") == ["urllist: the server went away"]
        assert col.catalog.get_meta("search_done:urllist") is None  # asked again next run
