"""Text from HTML in real records reads as a browser shows it, and cannot forge credit lines."""

from __future__ import annotations

import csv
import io
import json

import pytest
from bs4 import BeautifulSoup
from httpserver import send
from imagefactory import make_image
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from acnedata.cli import app
from acnedata.htmltext import element_text, html_to_text
from acnedata.sources.openverse import _candidate as openverse_candidate

runner = CliRunner()
ELVEZIO = (
    'The original uploader was <a href="https://it.wikipedia.org/wiki/Utente:Elvezio">Elvezio</a>'
    ' at <a href="https://it.wikipedia.org/">Italian Wikipedia</a>.'
)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        (ELVEZIO, "The original uploader was Elvezio at Italian Wikipedia."),
        ("Papulo<b>pustular</b> acne", "Papulopustular acne"),  # inline: no space inserted
        ('<span class="fn">Jane</span><span style="display:none">vcard</span>, <i>photo</i>!',
         "Jane, photo!"),
        ('a <span style="color: red; DISPLAY : none;">x</span>b', "a b"),
        ('<span style="visibility:hidden">x</span>seen', "seen"),
        ("<span hidden>x</span>seen <script>alert(1)</script><style>p{}</style>", "seen"),
        ("<p>one</p><p>two</p><div>three<br>four</div>", "one two three four"),
        ("<ul><li>a</li><li>b</li></ul>", "a b"),
        ("tom &amp; jerry <!-- note --> &lt;b&gt;", "tom & jerry <b>"),
        ("  plain\n\ttext  ", "plain text"),
        (None, ""),
    ],
)  # fmt: skip
def test_html_to_text_as_a_browser_shows_it(html, text):
    assert html_to_text(html) == text


def test_element_text_of_a_parsed_page():
    soup = BeautifulSoup(
        "<figure><img src=a.jpg><figcaption>Acne on the <em>cheek</em>; "
        '<span style="display:none">hidden</span>(<a>source</a>).</figcaption></figure>',
        "html.parser",
    )
    assert element_text(soup.find("figcaption")) == "Acne on the cheek; (source)."


def test_openverse_fields_are_plain_text():
    cand = openverse_candidate(
        {"id": "ov1", "url": "https://x/1.jpg", "title": "Acne <i>vulgaris</i>, cheek",
         "creator": "<a href='x'>Jane</a> Doe", "attribution": "&quot;t&quot; by Jane."},
        "papular", "acne",
    )  # fmt: skip
    assert (cand.title, cand.author, cand.attribution) == (
        "Acne vulgaris, cheek",
        "Jane Doe",
        '"t" by Jane.',
    )


def _jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    make_image(seed, size=(64, 64), seed=seed).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _commons_page(server, pageid: int, meta: dict) -> dict:
    ext = {key: {"value": value, "source": "commons-desc-page"} for key, value in meta.items()}
    ext["LicenseShortName"] = {"value": "CC BY-SA 3.0", "source": "x"}
    ext["License"] = {"value": "cc-by-sa-3.0", "source": "x"}
    ext["LicenseUrl"] = {"value": "https://creativecommons.org/licenses/by-sa/3.0", "source": "x"}
    return {
        "pageid": pageid, "ns": 6, "title": f"File:Acne {pageid}.jpg", "index": pageid,
        "imageinfo": [{"url": server.url(f"/img/{pageid}.jpg"), "width": 64, "height": 64,
                       "descriptionurl": server.url(f"/wiki/File:{pageid}"), "mime": "image/jpeg",
                       "extmetadata": ext}],
    }  # fmt: skip


def commons_collection(httpserver, tmp_path, metas: list[dict]):
    """`acnedata collect` of a spec whose Commons search (a local server) returns `metas`."""
    pages = [_commons_page(httpserver, k + 1, meta) for k, meta in enumerate(metas)]
    served = {"n": 0}

    def api(req):
        body = {"batchcomplete": True, "query": {"pages": pages if not served["n"] else []}}
        served["n"] += 1
        send(req, 200, json.dumps(body), {"Content-Type": "application/json"})

    httpserver.route("/w/api.php", handler=api)
    for k in range(len(metas)):
        httpserver.route(f"/img/{k + 1}.jpg", body=_jpeg(500 + k),
                         headers={"Content-Type": "image/jpeg"})  # fmt: skip
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'name = "records"\ncontact = "t@example.org"\n'
        "[limits]\nmin_width = 32\nmin_height = 32\n"
        "[network]\nallow_private = true\nmin_interval = 0.0\nmax_retries = 0\n"
        f'[sources.commons]\nbase_url = "{httpserver.url("/w/api.php")}"\nformatversion = 2\n'
        '[[classes]]\nname = "papular"\nterms.en = ["papular acne"]\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["collect", str(spec), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    items = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["items"]
    return out, sorted(items, key=lambda i: i["id"])


def test_commons_record_text_reaches_the_manifest_as_plain_text(httpserver, tmp_path):
    out, items = commons_collection(httpserver, tmp_path, [{
        "ObjectName": "Acne <i>papulosa</i> on the cheek",
        "Artist": '<bdi><a href="//commons.wikimedia.org/wiki/User:Elvezio">Elvezio</a></bdi>'
                  '<span style="display:none" class="vcard">Elvezio vCard</span>',
        "Credit": ELVEZIO,
        "ImageDescription": "<div class=\"description\">Papulo<b>pustular</b> acne.</div>",
    }, {"ObjectName": "Second", "Credit": ELVEZIO}])  # fmt: skip
    item, second = items
    assert item["source"]["title"] == "Acne papulosa on the cheek"
    assert item["licence"]["author"] == "Elvezio"
    credits = (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert '"Acne papulosa on the cheek" by Elvezio, licensed under CC BY-SA 3.0' in credits
    assert "<" not in credits and "vCard" not in credits
    # no Artist: the Credit line names the uploader, with no space before the full stop
    assert second["licence"]["author"] == "The original uploader was Elvezio at Italian Wikipedia."


def test_a_title_cannot_break_or_forge_a_line_of_attribution_md(httpserver, tmp_path):
    hostile = [
        ("Acne\n## Forged heading\n- forged credit line", "J_D\r\n- fake"),
        ("[click](http://evil.example) *bold* <img src=x onerror=alert(1)> `code` & | x |",
         "Ann *"),
    ]  # fmt: skip
    urls = tmp_path / "urls.csv"
    with urls.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["url", "licence", "title", "author", "page_url", "label"])
        for k, (title, author) in enumerate(hostile):
            httpserver.route(f"/h/{k}.jpg", body=_jpeg(600 + k),
                             headers={"Content-Type": "image/jpeg"})  # fmt: skip
            page = httpserver.url(f"/page_{k}/a b)[x]")
            writer.writerow([httpserver.url(f"/h/{k}.jpg"), "CC-BY-4.0", title, author, page, ""])
    out = tmp_path / "out"
    result = runner.invoke(app, ["fetch", str(urls), "--out", str(out), "--allow-private", "-q"])
    assert result.exit_code == 0, result.output
    md = (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(md)
    credits = [t for t in tokens if t.type == "inline" and t.content.startswith('"')]
    kinds = {t.type for t in tokens} | {c.type for t in credits for c in t.children}
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["Attribution: urls", "CC BY 4.0 (`CC-BY-4.0`): 2 items"]
    assert sum(t.type == "list_item_open" for t in tokens) == 2
    assert not kinds & {"link_open", "em_open", "strong_open", "html_inline", "html_block",
                        "code_inline", "table_open", "s_open"}, kinds  # fmt: skip
    shown = ["".join(c.content for c in t.children if c.type == "text") for t in credits]
    assert shown[0].startswith('"Acne ## Forged heading - forged credit line" by J_D - fake,')
    assert shown[1].startswith(
        '"[click](http://evil.example) *bold* <img src=x onerror=alert(1)> `code` & | x |" by Ann *'
    )
    # the page URLs stay clickable links, their brackets and spaces percent-encoded
    assert httpserver.url("/page_0/a%20b%29%5Bx%5D") in md
    # attribution.csv keeps the record's text as it was, one row per item
    rows = list(csv.DictReader(io.StringIO((out / "attribution.csv").read_text("utf-8"))))
    assert sorted(r["title"] for r in rows) == sorted(t for t, _ in hostile)
