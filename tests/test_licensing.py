"""Licence normalisation, terms, policy verdicts, refused hosts and attribution files."""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest

from acnedata import licensing
from acnedata.licensing import (
    NOASSERTION,
    REFUSED_HOSTS,
    attribution_line,
    normalise,
    normalise_fields,
    refused_host,
    terms,
    verdict,
    write_attribution,
)
from acnedata.spec import LicencePolicy

# --- Creative Commons: every type × version that SPDX has ---------------------------------------

TYPES = ("BY", "BY-SA", "BY-ND", "BY-NC", "BY-NC-SA", "BY-NC-ND")
VERSIONS = ("1.0", "2.0", "2.5", "3.0", "4.0")
LONG = {"BY": "Attribution", "SA": "ShareAlike", "NC": "NonCommercial", "ND": "NoDerivatives"}


def _forms(cc_type: str, version: str) -> list[str]:
    """The ways sources spell one CC licence."""
    path = "by-nd-nc" if (cc_type, version) == ("BY-NC-ND", "1.0") else cc_type.lower()
    long = "-".join(LONG[e] for e in cc_type.split("-"))
    return [
        f"CC {cc_type} {version}",  # Commons LicenseShortName, Kaggle
        f"cc-{cc_type.lower()}-{version}",  # Commons License, Zenodo, HF
        f"CC-{cc_type}-{version}",  # SPDX itself
        f"license:cc-{cc_type.lower()}-{version}",  # HF tag
        f"{long} {version} International",
        f"Creative Commons {long} {version}",
        f"https://creativecommons.org/licenses/{path}/{version}/",
        f"http://creativecommons.org/licenses/{path}/{version}",
        f"https://creativecommons.org/licenses/{path}/{version}/deed.ko",
        f"//creativecommons.org/licenses/{path}/{version}/legalcode",
        f"  cc_{cc_type.lower().replace('-', '_')}_{version}  ",
    ]


CC_CASES = [
    pytest.param(form, f"CC-{t}-{v}", id=f"{t}-{v}-{i}")
    for t in TYPES
    for v in VERSIONS
    for i, form in enumerate(_forms(t, v))
]


@pytest.mark.parametrize(("raw", "expected"), CC_CASES)
def test_every_cc_type_and_version(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize("cc_type", TYPES)
@pytest.mark.parametrize("version", VERSIONS)
def test_cc_terms_follow_the_type(cc_type: str, version: str) -> None:
    t = terms(f"CC-{cc_type}-{version}")
    assert t.commercial is ("NC" not in cc_type)
    assert t.derivatives is ("ND" not in cc_type)
    assert t.share_alike is ("SA" in cc_type)
    assert t.attribution is True
    assert t.name == f"CC {cc_type} {version}"
    assert t.url is not None and t.url.startswith("https://creativecommons.org/licenses/")
    assert t.url.endswith(f"/{version}/")


def test_every_cc_id_we_return_is_a_real_spdx_id() -> None:
    spdx = pytest.importorskip("packaging.licenses")
    for cc_id in sorted(licensing.CC_SPDX | {"CC0-1.0", "CC-PDM-1.0", "CC-PDDC"}):
        assert spdx.canonicalize_license_expression(cc_id) == cc_id
    with pytest.raises(spdx.InvalidLicenseExpression):  # the check itself can fail
        spdx.canonicalize_license_expression("CC-BY-2.1-JP")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CC BY-SA 3.0 de", "CC-BY-SA-3.0-DE"),
        ("cc-by-sa-3.0-de", "CC-BY-SA-3.0-DE"),
        ("CC BY 3.0 us", "CC-BY-3.0-US"),
        ("CC BY-SA 3.0 igo", "CC-BY-SA-3.0-IGO"),
        ("CC BY-SA 2.0 uk", "CC-BY-SA-2.0-UK"),
        ("CC BY-NC-SA 2.0 fr", "CC-BY-NC-SA-2.0-FR"),
        ("CC BY-SA 2.1 jp", "CC-BY-SA-2.1-JP"),
        ("CC BY 2.5 au", "CC-BY-2.5-AU"),
        ("https://creativecommons.org/licenses/by-sa/3.0/at/", "CC-BY-SA-3.0-AT"),
        ("https://creativecommons.org/licenses/by/3.0/nl/deed.nl", "CC-BY-3.0-NL"),
        # ports without an SPDX id fall back to the unported licence
        ("CC BY 2.0 kr", "CC-BY-2.0"),
        ("CC BY-SA 2.5 es", "CC-BY-SA-2.5"),
        ("https://creativecommons.org/licenses/by-nc/2.0/kr/", "CC-BY-NC-2.0"),
        # a 2.1 port with no SPDX id and no unported 2.1: type known, version not an SPDX one
        ("CC BY 2.1 jp", "LicenseRef-CC-BY"),
        ("CC BY-SA 3.0 migrated", "CC-BY-SA-3.0"),  # Commons, relicensed from GFDL
        ("cc-by-sa-3.0,2.5,2.0,1.0", "CC-BY-SA-3.0"),  # Commons multi-version template
        ("CC SA 1.0", "CC-SA-1.0"),
        ("https://creativecommons.org/licenses/sa/1.0/", "CC-SA-1.0"),
        ("https://creativecommons.org/licenses/publicdomain/", "CC-PDDC"),
        ("CC BY 4", "CC-BY-4.0"),
        ("Attribution-NonCommercial-NoDerivs 3.0 Unported", "CC-BY-NC-ND-3.0"),
        ("Creative Commons Attribution-Share Alike 4.0", "CC-BY-SA-4.0"),  # Commons UsageTerms
        ("Attribution 4.0 International (CC BY 4.0)", "CC-BY-4.0"),  # Kaggle
        (
            "Attribution-NonCommercial-ShareAlike 4.0 International (CC BY-NC-SA 4.0)",
            "CC-BY-NC-SA-4.0",
        ),
        ("https://creativecommons.org/licenses/by/4.0/?ref=chooser-v1", "CC-BY-4.0"),
        ("https://www.creativecommons.org/licenses/by-sa/4.0", "CC-BY-SA-4.0"),
        ("creativecommons.org/licenses/by-nc/4.0/", "CC-BY-NC-4.0"),
    ],
)
def test_cc_ports_and_variants(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CC-BY", "LicenseRef-CC-BY"),
        ("CC BY", "LicenseRef-CC-BY"),
        ("cc-by", "LicenseRef-CC-BY"),
        ("CC BY-SA", "LicenseRef-CC-BY-SA"),
        ("Creative Commons Attribution", "LicenseRef-CC-BY"),
        ("CC BY-NC-ND", "LicenseRef-CC-BY-NC-ND"),
        ("https://creativecommons.org/licenses/by-sa/", "LicenseRef-CC-BY-SA"),
        ("LicenseRef-CC-BY-SA", "LicenseRef-CC-BY-SA"),
    ],
)
def test_version_less_cc_stays_version_less(raw: str, expected: str) -> None:
    assert normalise(raw) == expected
    t = terms(expected)
    assert t.url is None and "version not stated" in t.name


# --- The reference table, sources.md §9, row by row ---------------------------------------------

# (source, raw fields or a plain string, spdx, commercial, derivatives, attribution)
TABLE_9 = [
    # CC0
    ("commons", {"LicenseShortName": {"value": "CC0"}}, "CC0-1.0", True, True, False),
    ("commons", {"License": {"value": "cc0"}}, "CC0-1.0", True, True, False),
    ("openverse", {"license": "cc0", "license_version": "1.0"}, "CC0-1.0", True, True, False),
    ("isic", {"copyright_license": "CC-0"}, "CC0-1.0", True, True, False),
    ("zenodo", {"metadata": {"license": {"id": "cc0-1.0"}}}, "CC0-1.0", True, True, False),
    ("huggingface", {"tags": ["license:cc0-1.0"]}, "CC0-1.0", True, True, False),
    ("kaggle", {"licenseName": "CC0: Public Domain"}, "CC0-1.0", True, True, False),
    # public domain
    ("openverse", {"license": "pdm", "license_version": "1.0"}, "CC-PDM-1.0", True, True, False),
    ("commons", {"LicenseShortName": {"value": "Public domain"}},
     "LicenseRef-PublicDomain", True, True, False),
    ("commons", {"License": {"value": "pd"}}, "LicenseRef-PublicDomain", True, True, False),
    # CC BY 4.0
    (None, "CC BY 4.0", "CC-BY-4.0", True, True, True),
    (None, "cc-by-4.0", "CC-BY-4.0", True, True, True),
    (None, "license:cc-by-4.0", "CC-BY-4.0", True, True, True),
    ("openverse", {"license": "by", "license_version": "4.0"}, "CC-BY-4.0", True, True, True),
    ("isic", {"copyright_license": "CC-BY"}, "CC-BY-4.0", True, True, True),
    # CC BY-SA / ND / NC / NC-SA / NC-ND 4.0
    (None, "CC BY-SA 4.0", "CC-BY-SA-4.0", True, True, True),
    (None, "cc-by-sa-4.0", "CC-BY-SA-4.0", True, True, True),
    ("openverse", {"license": "by-sa", "license_version": "4.0"}, "CC-BY-SA-4.0", True, True,
     True),
    (None, "CC BY-ND 4.0", "CC-BY-ND-4.0", True, False, True),
    ("openverse", {"license": "by-nd", "license_version": "4.0"}, "CC-BY-ND-4.0", True, False,
     True),
    (None, "CC BY-NC 4.0", "CC-BY-NC-4.0", False, True, True),
    ("openverse", {"license": "by-nc", "license_version": "4.0"}, "CC-BY-NC-4.0", False, True,
     True),
    ("isic", {"copyright_license": "CC-BY-NC"}, "CC-BY-NC-4.0", False, True, True),
    (None, "CC BY-NC-SA 4.0", "CC-BY-NC-SA-4.0", False, True, True),
    ("openverse", {"license": "by-nc-sa", "license_version": "4.0"}, "CC-BY-NC-SA-4.0", False,
     True, True),
    (None, "CC BY-NC-ND 4.0", "CC-BY-NC-ND-4.0", False, False, True),
    ("openverse", {"license": "by-nc-nd", "license_version": "4.0"}, "CC-BY-NC-ND-4.0", False,
     False, True),
    # older versions
    (None, "CC BY 2.0", "CC-BY-2.0", True, True, True),
    (None, "CC BY-SA 3.0", "CC-BY-SA-3.0", True, True, True),
    ("openverse", {"license": "by-sa", "license_version": "2.0"}, "CC-BY-SA-2.0", True, True,
     True),
    # retired sampling licences
    ("openverse", {"license": "sampling+", "license_version": "1.0"},
     "LicenseRef-CC-Sampling-Plus", False, False, True),
    ("openverse", {"license": "nc-sampling+", "license_version": "1.0"},
     "LicenseRef-CC-Sampling-Plus", False, False, True),
    # KOGL 1-4 and 0
    ("datagokr", {"license": "공공누리 제1유형"}, "LicenseRef-KOGL-Type-1", True, True, True),
    ("datagokr", {"license": "공공누리 제2유형"}, "LicenseRef-KOGL-Type-2", False, True, True),
    ("datagokr", {"license": "공공누리 제3유형"}, "LicenseRef-KOGL-Type-3", True, False, True),
    ("datagokr", {"license": "공공누리 제4유형"}, "LicenseRef-KOGL-Type-4", False, False, True),
    ("datagokr", {"license": "공공누리 제0유형"}, "LicenseRef-KOGL-Type-0", True, True, False),
    # data.go.kr without restriction
    ("datagokr", {"이용허락범위": "이용허락범위 제한 없음"},
     "LicenseRef-KR-PublicData-Unrestricted", True, True, True),
    # Kaggle ODbL database: the images inside are NOASSERTION
    ("kaggle", {"licenseName": "Database: Open Database, Contents: © Original Authors"},
     NOASSERTION, None, False, True),
    # other / unknown / missing
    ("huggingface", {"tags": ["license:other"]}, NOASSERTION, None, False, True),
    ("huggingface", {"tags": ["license:unknown"]}, NOASSERTION, None, False, True),
    ("kaggle", {"licenseName": "Other (specified in description)"}, NOASSERTION, None, False,
     True),
    ("kaggle", {"licenseName": "Unknown"}, NOASSERTION, None, False, True),
    ("huggingface", {"tags": ["modality:image"]}, NOASSERTION, None, False, True),
    (None, None, NOASSERTION, None, False, True),
    # AI Hub: training (and augmenting for it) allowed, commercial use only through models
    ("aihub", {}, "LicenseRef-AIHub-Terms", None, True, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "raw", "spdx", "commercial", "derivatives", "attribution"),
    TABLE_9,
    ids=[f"{row[0]}:{row[2]}:{i}" for i, row in enumerate(TABLE_9)],
)
def test_reference_table_row(
    source: str | None,
    raw: object,
    spdx: str,
    commercial: bool | None,
    derivatives: bool,
    attribution: bool,
) -> None:
    found = normalise_fields(raw, source) if isinstance(raw, dict) else normalise(raw)
    assert found == spdx
    t = terms(found)
    assert (t.commercial, t.derivatives, t.attribution) == (commercial, derivatives, attribution)


# --- Public domain, KOGL, Korea, AI Hub, Kaggle, HF, pass-through, unknown ----------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CC0", "CC0-1.0"),
        ("cc0", "CC0-1.0"),
        ("cc0-1.0", "CC0-1.0"),
        ("CC0 1.0", "CC0-1.0"),
        ("CC-0", "CC0-1.0"),
        ("CC0 1.0 Universal", "CC0-1.0"),
        ("Creative Commons Zero v1.0 Universal", "CC0-1.0"),
        ("CC0: Public Domain", "CC0-1.0"),
        ("Public Domain Dedication (CC0)", "CC0-1.0"),
        ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0"),
        ("http://creativecommons.org/publicdomain/zero/1.0", "CC0-1.0"),
        ("https://creativecommons.org/publicdomain/zero/1.0/deed.ko", "CC0-1.0"),
        ("https://creativecommons.org/publicdomain/zero/1.0/legalcode", "CC0-1.0"),
        ("pdm", "CC-PDM-1.0"),
        ("Public Domain Mark 1.0", "CC-PDM-1.0"),
        ("CC-PDM-1.0", "CC-PDM-1.0"),
        ("https://creativecommons.org/publicdomain/mark/1.0/", "CC-PDM-1.0"),
        ("https://creativecommons.org/publicdomain/mark/1.0/deed.en", "CC-PDM-1.0"),
        ("Public domain", "LicenseRef-PublicDomain"),
        ("public domain", "LicenseRef-PublicDomain"),
        ("pd", "LicenseRef-PublicDomain"),
        ("PD", "LicenseRef-PublicDomain"),
        ("PD-old-70", "LicenseRef-PublicDomain"),
        ("pd-usgov", "LicenseRef-PublicDomain"),
        ("CC0 2.0", NOASSERTION),  # no such licence
    ],
)
def test_public_domain(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


KOGL_CASES = [
    pytest.param(form.format(n=n), f"LicenseRef-KOGL-Type-{n}", id=f"{n}-{i}")
    for n in range(5)
    for i, form in enumerate(
        (
            "공공누리 제{n}유형",
            "제{n}유형",
            "공공누리 {n}유형",
            "공공누리 제 {n}유형 (출처표시)",
            "KOGL Type {n}",
            "kogl type {n}",
            "KOGL-Type-{n}",
            "kogl_type_{n}",
            "LicenseRef-KOGL-Type-{n}",
        )
    )
] + [
    pytest.param("KOGL Type I: Attribution", "LicenseRef-KOGL-Type-1", id="roman-1"),
    pytest.param("KOGL Type IV", "LicenseRef-KOGL-Type-4", id="roman-4"),
    pytest.param(
        "https://www.kogl.or.kr/info/licenseType3.do", "LicenseRef-KOGL-Type-3", id="url-3"
    ),
    pytest.param("공공누리 제5유형", NOASSERTION, id="no-type-5"),
    pytest.param("KOGL", NOASSERTION, id="no-type"),
]


@pytest.mark.parametrize(("raw", "expected"), KOGL_CASES)
def test_kogl_types_in_both_languages(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize("n", range(5))
def test_kogl_terms_name_and_url(n: int) -> None:
    t = terms(f"LicenseRef-KOGL-Type-{n}")
    assert t.name == f"KOGL Type {n} (공공누리 제{n}유형)"
    assert t.url is not None and t.url.startswith("https://www.kogl.or.kr/")
    assert (t.commercial, t.derivatives) == {
        0: (True, True),
        1: (True, True),
        2: (False, True),
        3: (True, False),
        4: (False, False),
    }[n]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("이용허락범위 제한 없음", "LicenseRef-KR-PublicData-Unrestricted"),
        ("이용허락범위 제한없음", "LicenseRef-KR-PublicData-Unrestricted"),
        ("제한 없음", "LicenseRef-KR-PublicData-Unrestricted"),
        ("AI Hub", "LicenseRef-AIHub-Terms"),
        ("aihub", "LicenseRef-AIHub-Terms"),
        ("AI-Hub terms", "LicenseRef-AIHub-Terms"),
        ("LicenseRef-AIHub-Terms", "LicenseRef-AIHub-Terms"),
        ("sampling+", "LicenseRef-CC-Sampling-Plus"),
        ("nc-sampling+", "LicenseRef-CC-Sampling-Plus"),
        ("https://creativecommons.org/licenses/sampling+/1.0/", "LicenseRef-CC-Sampling-Plus"),
        ("https://creativecommons.org/licenses/nc-sampling+/1.0/", "LicenseRef-CC-Sampling-Plus"),
    ],
)
def test_korea_aihub_and_sampling(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CC0: Public Domain", "CC0-1.0"),
        ("CC BY-SA 4.0", "CC-BY-SA-4.0"),
        ("CC BY-NC-SA 4.0", "CC-BY-NC-SA-4.0"),
        ("Attribution 4.0 International (CC BY 4.0)", "CC-BY-4.0"),
        ("Attribution-NoDerivatives 4.0 International (CC BY-ND 4.0)", "CC-BY-ND-4.0"),
        ("Database: Open Database, Contents: © Original Authors", NOASSERTION),
        ("Database: Open Database, Contents: Database Contents", NOASSERTION),
        ("Other (specified in description)", NOASSERTION),
        ("Unknown", NOASSERTION),
        ("unknown", NOASSERTION),
        ("Data files © Original Authors", NOASSERTION),
    ],
)
def test_kaggle_license_names(raw: str, expected: str) -> None:
    assert normalise_fields({"licenseName": raw}, "kaggle") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("license:cc-by-4.0", "CC-BY-4.0"),
        ("license:cc-by-nc-4.0", "CC-BY-NC-4.0"),
        ("license:cc-by-sa-3.0", "CC-BY-SA-3.0"),
        ("license:cc0-1.0", "CC0-1.0"),
        ("license:mit", "MIT"),
        ("license:apache-2.0", "Apache-2.0"),
        ("license:odbl", "ODbL-1.0"),
        ("license:pddl", "PDDL-1.0"),
        ("license:other", NOASSERTION),
        ("license:unknown", NOASSERTION),
        ("license:openrail", NOASSERTION),
        ("cc-by-4.0", "CC-BY-4.0"),
        ("other", NOASSERTION),
        ("unknown", NOASSERTION),
    ],
)
def test_hugging_face_ids_and_tags(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("MIT", "MIT"),
        ("mit", "MIT"),
        ("Apache-2.0", "Apache-2.0"),
        ("BSD-3-Clause", "BSD-3-Clause"),
        ("ODbL-1.0", "ODbL-1.0"),
        ("CDLA-Permissive-2.0", "CDLA-Permissive-2.0"),
        ("GPL-3.0-only", "GPL-3.0-only"),
    ],
)
def test_exact_spdx_ids_pass_through(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "NOASSERTION",
        "Attribution",  # which attribution licence?
        "by-sa",  # an Openverse code without "CC" or a version
        "CC BY 5.0",  # no such version
        "CC BY-SA-ND 4.0",  # contradictory
        "CC NC 2.0",  # retired non-BY licence without an SPDX id
        "All rights reserved",
        "Copyrighted free use",
        "license:other",
        "https://example.org/licence",
        "https://creativecommons.org/about/",
        "Zlib",  # a real SPDX id, but not one whose terms we know
    ],
)
def test_unknown_is_noassertion(raw: str | None) -> None:
    assert normalise(raw) == NOASSERTION


def test_every_returnable_id_round_trips_and_has_terms() -> None:
    ids = licensing.CC_SPDX | licensing.CC_UNVERSIONED | set(licensing._FIXED)
    assert len(ids) > 80
    for spdx in sorted(ids):
        assert normalise(spdx) == spdx
        assert normalise(spdx.lower()) == spdx
        assert terms(spdx).spdx == spdx and terms(spdx).name


def test_unknown_terms_permit_nothing() -> None:
    for spdx in (NOASSERTION, "LicenseRef-Whatever"):
        t = terms(spdx)
        assert (t.commercial, t.derivatives, t.url) == (None, False, None)


def test_terms_urls_for_old_and_ported_licences() -> None:
    assert terms("CC-BY-NC-ND-1.0").url == "https://creativecommons.org/licenses/by-nd-nc/1.0/"
    assert terms("CC-BY-SA-3.0-DE").url == "https://creativecommons.org/licenses/by-sa/3.0/de/"
    assert terms("CC-BY-SA-3.0-DE").name == "CC BY-SA 3.0 DE"
    assert terms("CC-SA-1.0").attribution is False
    assert terms("CC0-1.0").url == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert terms("CC-PDM-1.0").url == "https://creativecommons.org/publicdomain/mark/1.0/"
    assert terms("CC-BY-SA-4.0").share_alike is True


# --- normalise_fields: each source's own fields -------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fields", "expected"),
    [
        # Commons: LicenseShortName, then License, then LicenseUrl; extmetadata wrappers
        ("commons", {"LicenseShortName": {"value": "CC BY-SA 4.0"},
                     "License": {"value": "cc-by-sa-3.0"}}, "CC-BY-SA-4.0"),
        ("commons", {"LicenseShortName": {"value": "Some odd text"},
                     "License": {"value": "cc-by-sa-3.0"}}, "CC-BY-SA-3.0"),
        ("commons", {"LicenseShortName": {"value": ""}, "License": {"value": ""},
                     "LicenseUrl": {"value": "https://creativecommons.org/licenses/by/2.0"}},
         "CC-BY-2.0"),
        ("commons", {"extmetadata": {"LicenseShortName": {"value": "CC BY-SA 3.0 de"}}},
         "CC-BY-SA-3.0-DE"),
        ("commons", {"LicenseShortName": "CC BY 3.0"}, "CC-BY-3.0"),
        ("commons", {"LicenseShortName": {"value": "KOGL Type 1"}}, "LicenseRef-KOGL-Type-1"),
        ("commons", {}, NOASSERTION),
        # Openverse: code + version
        ("openverse", {"license": "by-nc-sa", "license_version": "2.0"}, "CC-BY-NC-SA-2.0"),
        ("openverse", {"license": "BY", "license_version": "2.5"}, "CC-BY-2.5"),
        ("openverse", {"license": "by", "license_version": None}, "LicenseRef-CC-BY"),
        ("openverse", {"license": "", "license_url":
                       "https://creativecommons.org/licenses/by-nd/3.0/"}, "CC-BY-ND-3.0"),
        # ISIC
        ("isic", {"copyright_license": "CC-BY-NC"}, "CC-BY-NC-4.0"),
        ("isic", {"copyright_license": "cc-0"}, "CC0-1.0"),
        ("isic", {"copyright_license": None}, NOASSERTION),
        # Zenodo
        ("zenodo", {"metadata": {"license": {"id": "cc-by-sa-4.0"}}}, "CC-BY-SA-4.0"),
        ("zenodo", {"license": "cc-by-4.0"}, "CC-BY-4.0"),
        ("zenodo", {"metadata": {}}, NOASSERTION),
        # Hugging Face: tags, then cardData (string or list)
        ("huggingface", {"tags": ["task_categories:image-classification", "license:cc-by-4.0"]},
         "CC-BY-4.0"),
        ("huggingface", {"tags": ["license:cc-by-4.0", "license:mit"]}, NOASSERTION),
        ("huggingface", {"tags": ["license:cc-by-4.0", "LICENSE:CC-BY-4.0"]}, "CC-BY-4.0"),
        ("huggingface", {"tags": [], "cardData": {"license": "cc-by-nc-4.0"}}, "CC-BY-NC-4.0"),
        ("huggingface", {"cardData": {"license": ["cc0-1.0"]}}, "CC0-1.0"),
        ("huggingface", {"cardData": {"license": ["cc0-1.0", "other"]}}, NOASSERTION),
        ("huggingface", {"license": "cc-by-sa-4.0"}, "CC-BY-SA-4.0"),
        # Kaggle
        ("kaggle", {"licenseName": "CC BY-SA 3.0"}, "CC-BY-SA-3.0"),
        ("kaggle", {"licenses": [{"name": "CC0-1.0"}]}, "CC0-1.0"),
        # data.go.kr
        ("datagokr", {"이용허락범위": "제한 없음"}, "LicenseRef-KR-PublicData-Unrestricted"),
        ("datagokr", {"license": "KOGL Type 2"}, "LicenseRef-KOGL-Type-2"),
        ("datagokr", {"kogl": 3}, "LicenseRef-KOGL-Type-3"),
        ("datagokr", {"use_prmisn_ennc": "없음"}, NOASSERTION),
        # AI Hub: always its terms, whatever the fields say
        ("aihub", {"license": "CC0"}, "LicenseRef-AIHub-Terms"),
        # generic: licence, license, spdx, license_url, licence_url, url in turn
        (None, {"licence": "CC BY 4.0"}, "CC-BY-4.0"),
        (None, {"license": "garbage", "spdx": "CC-BY-SA-4.0"}, "CC-BY-SA-4.0"),
        (None, {"licence_url": "https://creativecommons.org/licenses/by/3.0/"}, "CC-BY-3.0"),
        (None, {"url": "https://creativecommons.org/publicdomain/zero/1.0/"}, "CC0-1.0"),
        ("urllist", {"url": "https://example.org/a.jpg"}, NOASSERTION),
        ("folder", {"license": "CC BY-NC 4.0"}, "CC-BY-NC-4.0"),
        (None, {}, NOASSERTION),
    ],
)  # fmt: skip
def test_normalise_fields(source: str | None, fields: dict, expected: str) -> None:
    assert normalise_fields(fields, source) == expected


# --- Verdicts -----------------------------------------------------------------------------------

DEFAULT = LicencePolicy()  # CC0, PDM, CC-BY-*, CC-BY-SA-*; no NC, no ND; NOASSERTION rejected
PERMISSIVE = LicencePolicy(allow=("CC-BY-*", "CC0-1.0"), noncommercial=True, no_derivatives=True)


@pytest.mark.parametrize(
    ("spdx", "policy", "decision", "in_reason", "no_derivatives"),
    [
        ("CC-BY-4.0", DEFAULT, "allow", ["CC-BY-4.0", "CC-BY-*"], False),
        ("CC-BY-SA-3.0-DE", DEFAULT, "allow", ["CC-BY-SA-3.0-DE"], False),
        ("CC0-1.0", DEFAULT, "allow", ["CC0-1.0"], False),
        ("CC-PDM-1.0", DEFAULT, "allow", ["CC-PDM-1.0"], False),
        ("NOASSERTION", DEFAULT, "reject", ["NOASSERTION", "policy.noassertion"], True),
        ("NOASSERTION", LicencePolicy(noassertion="review"), "review",
         ["NOASSERTION", "review"], True),
        ("Other (specified in description)", DEFAULT, "reject",
         ["Other (specified in description)", "NOASSERTION"], True),
        ("LicenseRef-CC-Sampling-Plus", PERMISSIVE, "reject", ["Sampling", "retired"], True),
        ("LicenseRef-CC-Sampling-Plus", LicencePolicy(allow=("*",), noncommercial=True,
                                                      no_derivatives=True), "reject",
         ["retired"], True),
        ("CC-BY-NC-4.0", DEFAULT, "reject",
         ["CC-BY-NC-4.0 forbids commercial use and the policy does not accept non-commercial "
          "licences (policy.noncommercial = false)"], False),
        ("CC-BY-NC-SA-2.0", DEFAULT, "reject", ["CC-BY-NC-SA-2.0", "noncommercial"], False),
        ("LicenseRef-KOGL-Type-2", DEFAULT, "reject", ["KOGL-Type-2", "non-commercial"], False),
        ("CC-BY-ND-4.0", DEFAULT, "reject", ["CC-BY-ND-4.0", "policy.no_derivatives = false"],
         True),
        ("LicenseRef-KOGL-Type-3", DEFAULT, "reject", ["KOGL-Type-3", "derivatives"], True),
        ("CC-BY-NC-ND-4.0", LicencePolicy(noncommercial=True), "reject",
         ["CC-BY-NC-ND-4.0", "no_derivatives"], True),
        ("CC-BY-NC-4.0", PERMISSIVE, "allow", ["CC-BY-NC-4.0", "CC-BY-*"], False),
        ("CC-BY-ND-4.0", PERMISSIVE, "allow", ["CC-BY-ND-4.0"], True),
        ("CC-BY-NC-ND-4.0", PERMISSIVE, "allow", ["CC-BY-NC-ND-4.0"], True),
        ("LicenseRef-AIHub-Terms", DEFAULT, "reject", ["AIHub", "redistribut"], False),
        ("LicenseRef-AIHub-Terms", LicencePolicy(allow=("LicenseRef-*",)), "reject",
         ["redistribut"], False),
        ("LicenseRef-AIHub-Terms", LicencePolicy(allow=("LicenseRef-AIHub-Terms",)), "allow",
         ["LicenseRef-AIHub-Terms"], False),
        ("LicenseRef-KOGL-Type-1", DEFAULT, "reject",
         ["LicenseRef-KOGL-Type-1", "policy.allow", "CC0-1.0, CC-PDM-1.0, CC-BY-*, CC-BY-SA-*"],
         False),
        ("LicenseRef-KOGL-Type-1", LicencePolicy(allow=("LicenseRef-KOGL-Type-1",)), "allow",
         ["KOGL"], False),
        # a version-less licence goes to a person when some version of it is allowed (issue 13)
        ("LicenseRef-CC-BY", DEFAULT, "review", ["LicenseRef-CC-BY", "version not stated",
                                                 "names no version"], False),
        ("LicenseRef-CC-BY", LicencePolicy(allow=("CC0-1.0",)), "reject",
         ["names no version", "no version of it"], False),
        ("LicenseRef-PublicDomain", DEFAULT, "reject", ["LicenseRef-PublicDomain"], False),
        ("MIT", DEFAULT, "reject", ["MIT", "policy.allow"], False),
        ("CC-BY-4.0", LicencePolicy(allow=("cc-by-*",)), "reject", ["policy.allow"], False),
        ("CC-BY-SA-4.0", LicencePolicy(allow=("CC-BY-4.0",)), "reject", ["CC-BY-SA-4.0"], False),
        ("CC-BY-4.0", LicencePolicy(allow=()), "reject", ["(empty)"], False),
    ],
)  # fmt: skip
def test_verdict_branches(
    spdx: str, policy: LicencePolicy, decision: str, in_reason: list[str], no_derivatives: bool
) -> None:
    v = verdict(spdx, policy)
    assert v.decision == decision, v.reason
    for text in in_reason:
        assert text in v.reason
    assert v.no_derivatives is no_derivatives
    assert v.spdx == normalise(spdx)


def test_default_policy_never_lets_nc_or_nd_through_the_wildcard() -> None:
    for t in TYPES:
        for version in VERSIONS:
            v = verdict(f"CC-{t}-{version}", DEFAULT)
            expected = "reject" if ("NC" in t or "ND" in t) else "allow"
            assert v.decision == expected, v.reason


# --- Refused hosts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://dermnetnz.org/topics/acne-vulgaris", "dermnetnz.org"),
        ("https://www.dermnetnz.org/assets/a.jpg", "dermnetnz.org"),
        ("http://images.DermNetNZ.org./x.jpg", "dermnetnz.org"),
        ("https://www.dermnet.com/images/Acne", "dermnet.com"),
        ("https://www.dermis.net/dermisroot/en/home/index.htm", "dermis.net"),
        ("dermis.net/some/page", "dermis.net"),
        ("https://user:pw@dermnet.com:8443/a", "dermnet.com"),
        ("https://notdermnet.com/a", None),
        ("https://dermnetnz.org.example.com/a", None),
        ("https://commons.wikimedia.org/wiki/File:Acne.jpg", None),
        ("", None),
        ("http://[::1", None),  # unparseable
        ("HTTPS://WWW.DERMIS.NET/X", "dermis.net"),
        ("https://derm\tis.net/x", "dermis.net"),  # urlsplit drops tabs and newlines
        ("https://example.org/?from=dermis.net", None),  # named, but not as the host
    ],
)
def test_refused_host(url: str, refused: str | None) -> None:
    reason = refused_host(url)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and REFUSED_HOSTS[refused] in reason


# --- Attribution --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://upload.wikimedia.org/a/b%20c.jpg?x=1#f",
        "http://127.0.0.1:8080/img/1.jpg",
        "file:///tmp/x/y.png",
        "https://h/dir/",
        "https://h",
        "https://h#/a.jpg",
        "https://h/a/./",
        "https://h/a\tb/c.jpg",
        "https://hé.example/a.jpg",
        "https://[::1]/a.jpg",
        "HTTP://H/A.JPG",
        "//h/a.jpg",
        "mailto:x@y",
        "relative/path.jpg",
        "",
        " https://h/a.jpg",
    ],
)
def test_url_path_is_urlsplits_path(url: str) -> None:
    assert licensing._url_path(url) == urlsplit(url).path


@pytest.mark.parametrize(
    "path", ["", "/", "a", "/a/b", "/a/b/", "a//b//", "/a/.", "/a/..", ".", "//x"]
)
def test_last_name_is_pure_posix_name(path: str) -> None:
    assert licensing._last_name(path) == PurePosixPath(path).name


def _item(
    ident: str, spdx: str, *, title: str | None = "Acne on cheek", author: str | None = "Jane Doe",
    **extra: object,
) -> dict:  # fmt: skip
    return {
        "id": ident,
        "file": f"images/ab/{ident}.jpg",
        "source": {
            "name": "commons",
            "url": f"https://upload.wikimedia.org/x/{ident}_orig%20name.jpg",
            "page_url": f"https://commons.wikimedia.org/wiki/File:{ident}.jpg",
            "title": title,
        },
        "licence": {"spdx": spdx, "url": None, "author": author, "attribution": None},
        **extra,
    }


def test_attribution_line_cc() -> None:
    line = attribution_line(_item("a1", "CC-BY-SA-4.0", changes="resized to 256 px"))
    assert line == (
        '"Acne on cheek" by Jane Doe, licensed under CC BY-SA 4.0 '
        "(https://creativecommons.org/licenses/by-sa/4.0/), from "
        "https://commons.wikimedia.org/wiki/File:a1.jpg. Changes: resized to 256 px."
    )


def test_attribution_line_fallbacks() -> None:
    item = _item("b2", "CC-BY-2.0", title=None, author=None)
    item["licence"]["url"] = "https://creativecommons.org/licenses/by/2.0/deed.en"
    line = attribution_line(item)
    assert line.startswith('"b2_orig name.jpg" by unknown author, licensed under CC BY 2.0 ')
    assert "(https://creativecommons.org/licenses/by/2.0/deed.en)" in line
    assert "Changes" not in line


@pytest.mark.parametrize(
    ("spdx", "phrase"),
    [
        ("CC0-1.0", "dedicated to the public domain under CC0 1.0"),
        ("CC-PDM-1.0", "marked with the Public Domain Mark 1.0"),
        ("LicenseRef-PublicDomain", "in the public domain"),
        ("NOASSERTION", "licence not recorded"),
    ],
)
def test_attribution_line_public_domain_and_unknown(spdx: str, phrase: str) -> None:
    assert phrase in attribution_line(_item("c3", spdx))


def test_attribution_line_keeps_the_licensors_credit() -> None:
    item = _item("d4", "CC-BY-4.0", author=None)
    item["licence"]["attribution"] = "Hospital Italiano de Buenos Aires"
    assert attribution_line(item).endswith("Credit: Hospital Italiano de Buenos Aires.")


def test_attribution_line_kogl_is_korean() -> None:
    item = _item("e5", "LicenseRef-KOGL-Type-1", title="여드름 사진", author="국립암센터")
    assert attribution_line(item) == (
        "본 저작물은 '국립암센터'에서 작성하여 공공누리 제1유형으로 개방한 '여드름 사진'을 "
        "이용하였습니다 (https://commons.wikimedia.org/wiki/File:e5.jpg)."
    )
    assert "제3유형" in attribution_line(_item("e6", "LicenseRef-KOGL-Type-3"))


def test_write_attribution_files(tmp_path: Path) -> None:
    items = [
        _item("a1", "CC-BY-SA-4.0", changes=["cropped", "resized"]),
        _item("a2", "CC-BY-SA-4.0"),
        _item("k1", "LicenseRef-KOGL-Type-1", title="여드름", author="보건복지부"),
        _item("z1", "CC0-1.0", author=None),
    ]
    folder = tmp_path / "out" / "ds"
    md_path, csv_path = write_attribution(folder, items, dataset_name="acne-test")
    assert (md_path, csv_path) == (folder / "ATTRIBUTION.md", folder / "attribution.csv")
    assert sorted(p.name for p in folder.iterdir()) == ["ATTRIBUTION.md", "attribution.csv"]

    md = md_path.read_text("utf-8")
    assert md.startswith("# Attribution: acne-test\n")
    assert "## CC BY-SA 4.0 (`CC-BY-SA-4.0`): 2 items" in md
    assert "## KOGL Type 1 (공공누리 제1유형) (`LicenseRef-KOGL-Type-1`): 1 item" in md
    assert md.index("CC-BY-SA-4.0`): 2") < md.index("KOGL-Type-1`): 1")  # larger group first
    bullets = [line for line in md.splitlines() if line.startswith("- ")]
    assert len(bullets) == 4
    assert "- 본 저작물은 '보건복지부'에서 작성하여 공공누리 제1유형으로 개방한 '여드름'을" in md

    with csv_path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "id", "file", "title", "author", "source_page", "licence", "licence_url", "changes",
        "attribution",
    ]  # fmt: skip
    assert [r["id"] for r in rows] == ["a1", "a2", "k1", "z1"]
    assert rows[0]["licence"] == "CC-BY-SA-4.0"
    assert rows[0]["licence_url"] == "https://creativecommons.org/licenses/by-sa/4.0/"
    assert rows[0]["changes"] == "cropped; resized"
    assert rows[0]["source_page"] == "https://commons.wikimedia.org/wiki/File:a1.jpg"
    assert rows[0]["attribution"] == attribution_line(items[0])
    assert rows[2]["attribution"].startswith("본 저작물은 '보건복지부'")
    assert rows[2]["licence_url"] == "https://www.kogl.or.kr/info/licenseType1.do"
    assert rows[3]["author"] == ""
    assert "unknown author" in rows[3]["attribution"]


def test_write_attribution_replaces_and_handles_no_items(tmp_path: Path) -> None:
    write_attribution(tmp_path, [_item("a1", "CC-BY-4.0")], dataset_name="x")
    md_path, csv_path = write_attribution(tmp_path, [], dataset_name="x")
    assert "No items." in md_path.read_text("utf-8")
    assert csv_path.read_text("utf-8").splitlines() == [
        "id,file,title,author,source_page,licence,licence_url,changes,attribution"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ATTRIBUTION.md", "attribution.csv"]


def test_credit_that_ends_in_a_period_gets_no_second_one():
    item = {
        "id": "openverse:1",
        "file": "images/a.jpg",
        "source": {"title": "Acne", "page_url": "https://example.org/p"},
        "licence": {
            "spdx": "CC-BY-4.0",
            "author": "Ann",
            "attribution": '"Acne" by Ann is licensed under CC BY 4.0.',
        },
    }
    line = attribution_line(item)
    assert not line.endswith("..")
    assert 'Credit: "Acne" by Ann is licensed under CC BY 4.0.' in line
