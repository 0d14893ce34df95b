"""Licence expressions (AND/OR), GFDL versions and licences named without a version."""

from __future__ import annotations

import json
import sqlite3

import pytest
from imagefactory import make_image
from typer.testing import CliRunner

from acnedata.cli import app
from acnedata.licensing import normalise, terms, verdict
from acnedata.spec import LicencePolicy

DEFAULT = LicencePolicy()  # CC0, PDM, CC-BY-*, CC-BY-SA-*
runner = CliRunner()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CC-BY-SA-4.0 OR GFDL-1.2", "CC-BY-SA-4.0 OR GFDL-1.2-only"),  # SPDX's deprecated id
        ("CC BY-SA 4.0 or GFDL 1.2", "CC-BY-SA-4.0 OR GFDL-1.2-only"),  # Commons short names
        ("cc-by-sa-3.0 and (cc-by-4.0 or mit)", "CC-BY-SA-3.0 AND (CC-BY-4.0 OR MIT)"),
        ("CC BY 4.0 OR CC-BY-4.0", "CC-BY-4.0"),  # one licence written twice
        ("CC BY-SA 4.0 or GFDL", "CC-BY-SA-4.0 OR LicenseRef-GFDL"),  # was NOASSERTION
        ("GFDL-1.3+ OR CC-BY-3.0", "GFDL-1.3-or-later OR CC-BY-3.0"),
        ("MIT OR Some Custom Terms", "NOASSERTION"),  # an unknown part: never half a licence
        ("GPL-2.0 WITH Classpath-exception-2.0", "NOASSERTION"),
    ],
)
def test_expressions_normalise_to_spdx(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize("version", ["1.1", "1.2", "1.3"])
@pytest.mark.parametrize("inv", ["", "invariants-", "no-invariants-"])
@pytest.mark.parametrize("scope", ["only", "or-later"])
def test_every_gfdl_spdx_id(version, inv, scope):
    spdx = f"GFDL-{version}-{inv}{scope}"
    assert normalise(spdx) == spdx
    assert normalise(spdx.lower()) == spdx
    t = terms(spdx)
    assert t.commercial is True and t.derivatives and t.attribution and t.share_alike
    assert f"fdl-{version}" in t.url and t.name.startswith(f"GNU FDL {version}")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GFDL-1.2", "GFDL-1.2-only"),
        ("GFDL 1.2", "GFDL-1.2-only"),
        ("gfdl-1.3+", "GFDL-1.3-or-later"),
        ("GNU Free Documentation License v1.2 or any later version", "GFDL-1.2-or-later"),
        ("GNU Free Documentation License, version 1.1, no invariants, only", "NOASSERTION"),
        ("GFDL", "LicenseRef-GFDL"),
    ],
)
def test_gfdl_names(raw, expected):
    assert normalise(raw) == expected


def test_or_is_allowed_when_one_side_is():
    v = verdict("CC-BY-SA-4.0 OR GFDL-1.2", DEFAULT)
    assert v.decision == "allow" and v.spdx == "CC-BY-SA-4.0 OR GFDL-1.2-only"
    assert "usable under CC-BY-SA-4.0" in v.reason
    # GFDL alone is not in the default policy
    assert verdict("GFDL-1.2", DEFAULT).decision == "reject"
    # an OR takes the alternative that allows derivatives
    v = verdict("CC-BY-ND-4.0 OR CC-BY-4.0", DEFAULT)
    assert v.decision == "allow" and v.no_derivatives is False


def test_or_is_rejected_when_no_side_is():
    v = verdict("CC-BY-NC-4.0 OR GFDL-1.3-or-later", DEFAULT)
    assert v.decision == "reject"
    assert "no alternative is allowed" in v.reason and "non-commercial" in v.reason


def test_and_needs_every_part():
    v = verdict("CC-BY-SA-4.0 AND GFDL-1.2", DEFAULT)
    assert v.decision == "reject" and "GFDL-1.2-only" in v.reason
    both = LicencePolicy(allow=("CC-BY-SA-*", "GFDL-*"))
    assert verdict("CC-BY-SA-4.0 AND GFDL-1.2", both).decision == "allow"
    # a pattern that matches the text of the first part does not allow the whole expression
    assert verdict("CC-BY-NC-4.0 AND CC-BY-4.0", DEFAULT).decision == "reject"
    assert verdict("CC-BY-4.0 AND CC-BY-ND-4.0", DEFAULT).no_derivatives is True


def test_expression_terms_and_credit_name_both_sides():
    t = terms("CC-BY-SA-4.0 OR GFDL-1.2-only")
    assert t.name == "CC BY-SA 4.0 or GNU FDL 1.2 only"
    assert t.commercial is True and t.derivatives
    assert terms("CC-BY-NC-4.0 AND CC-BY-4.0").commercial is False


@pytest.mark.parametrize("raw", ["CC BY", "CC BY-SA", "Creative Commons Attribution", "GFDL"])
def test_a_licence_without_version_goes_to_review(raw):
    policy = LicencePolicy(allow=("CC-BY-*", "CC-BY-SA-*", "GFDL-*"))
    v = verdict(normalise(raw), policy)
    assert v.decision == "review"
    assert "names no version" in v.reason


def test_a_licence_without_version_is_rejected_when_no_version_is_allowed():
    assert verdict("CC BY-NC", DEFAULT).decision == "reject"  # every version is NC
    v = verdict("GFDL", DEFAULT)
    assert v.decision == "reject" and "no version of it" in v.reason


def _search_spec(tmp_path) -> tuple:
    rows = [
        ("dual", "CC BY-SA 4.0 OR GFDL 1.2"),
        ("both", "CC-BY-SA-4.0 AND GFDL-1.2"),
        ("bare", "CC BY"),
        ("plain", "CC BY 4.0"),
    ]
    with (tmp_path / "urls.jsonl").open("w", encoding="utf-8") as fh:
        for name, licence in rows:
            row = {"url": f"http://127.0.0.1:9/{name}.jpg", "licence": licence, "label": "papular"}
            fh.write(json.dumps(row) + "\n")
    (tmp_path / "spec.toml").write_text(
        'name = "expr"\n[policy]\nallow = ["CC-BY-*", "CC-BY-SA-*"]\n'
        "[network]\nallow_private = true\n"
        '[sources.urllist]\npath = "urls.jsonl"\n[[classes]]\nname = "papular"\n',
        encoding="utf-8",
    )
    return tmp_path / "spec.toml", tmp_path / "out"


def test_search_gate_judges_expressions_and_flags_versionless(tmp_path):
    spec, out = _search_spec(tmp_path)
    result = runner.invoke(app, ["search", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    states = json.loads(runner.invoke(app, ["status", str(out), "--json"]).stdout)["states"]
    assert states == {"queued": 3, "rejected": 1}, states  # review items are fetched, then shown
    with sqlite3.connect(out / "catalog.sqlite") as db:
        rows = db.execute("SELECT key, spdx, verdict, verdict_reason FROM items").fetchall()
    got = {key.rsplit("/", 1)[1]: (spdx, v, reason) for key, spdx, v, reason in rows}
    assert got["dual.jpg"][:2] == ("CC-BY-SA-4.0 OR GFDL-1.2-only", "allow")
    assert got["plain.jpg"][:2] == ("CC-BY-4.0", "allow")
    assert got["bare.jpg"][:2] == ("LicenseRef-CC-BY", "review")
    assert "names no version" in got["bare.jpg"][2]
    assert got["both.jpg"][:2] == ("CC-BY-SA-4.0 AND GFDL-1.2-only", "reject")
    assert "not every part is allowed" in got["both.jpg"][2]


def _photos(root):
    (root / "papular").mkdir(parents=True)
    for k in range(2):
        make_image(k, size=(40, 40), seed=300 + k).save(root / "papular" / f"{k}.png")
    return root


def test_import_keeps_a_dual_licence_expression(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["import", str(_photos(tmp_path / "src")), "--out", str(out), "--licence",
         "CC-BY-SA-4.0 OR GFDL-1.2", "--author", "Jane"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    items = json.loads((out / "manifest.json").read_text())["items"]
    assert {i["licence"]["spdx"] for i in items} == {"CC-BY-SA-4.0 OR GFDL-1.2-only"}
    assert "CC BY-SA 4.0 or GNU FDL 1.2 only" in (out / "ATTRIBUTION.md").read_text()


def test_import_refuses_a_licence_without_version(tmp_path):
    result = runner.invoke(
        app, ["import", str(_photos(tmp_path / "src")), "--out", str(tmp_path / "out"),
              "--licence", "CC BY"],
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "names no version" in lines[0] and "CC-BY-4.0" in lines[0]
