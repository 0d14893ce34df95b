"""Spec loading: the built-in spec, overrides for mirrors and tests, and one-line errors."""

from pathlib import Path

import pytest

from acnedata.errors import SpecError
from acnedata.spec import builtin_specs, load_spec

MINIMAL = """
name = "tiny"
[[classes]]
name = "a"
terms.en = ["alpha"]
[[classes]]
name = "b"
aliases = ["beta"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_acne_spec_has_the_papers_four_classes_in_two_languages():
    spec = load_spec("acne-l70")
    assert "acne-l70" in builtin_specs()
    assert spec.class_names == ["comedonal", "papular", "pustular", "nodulocystic"]
    assert spec.icd10 == "L70"
    assert spec.class_named("blemish").name == "comedonal"
    assert spec.class_named("Vulgaris").name == "papular"
    assert spec.class_named("pustulosa").name == "pustular"
    korean = {c.name: c.terms["ko"] for c in spec.classes}
    assert "면포성 여드름" in korean["comedonal"]
    assert "구진성 여드름" in korean["papular"]
    assert "농포성 여드름" in korean["pustular"]
    assert "결절낭포성 여드름" in korean["nodulocystic"]
    assert all("cartoon" in c.exclude for c in spec.classes)
    assert spec.policy.noassertion == "reject"
    assert not spec.network.allow_private
    assert spec.sources["commons"].base_url.startswith("https://commons.wikimedia.org")
    assert {s.name for s in spec.portals()} == {"zenodo", "huggingface"}
    assert len(spec.sha256) == 64


def test_contact_base_url_and_allow_private_are_honoured(tmp_path):
    path = write(
        tmp_path,
        'contact = "me@example.org"\n'
        + MINIMAL
        + """
[network]
allow_private = true
[sources.commons]
base_url = "http://127.0.0.1:9/w/api.php"
""",
    )
    spec = load_spec(path)
    assert spec.contact == "me@example.org"
    assert spec.network.allow_private is True
    assert spec.sources["commons"].base_url == "http://127.0.0.1:9/w/api.php"
    assert load_spec(path, contact="other@example.org").contact == "other@example.org"
    # a class without terms searches for its own name
    assert spec.class_named("a").all_terms() == ["alpha"]
    assert spec.class_named("b").all_terms() == ["b"]


def test_dedup_thresholds_reach_the_whole_image_verification(tmp_path):
    from acnedata.dedup import DEFAULT_CONFIG
    from acnedata.pipeline import Collector

    spec = load_spec(write(tmp_path, MINIMAL + "[dedup]\ndetail_threshold = -1\n"))
    assert spec.detail_threshold == -1.0
    collector = Collector(spec, tmp_path / "out")
    config = collector.dedup_config()
    collector.close()
    assert (config.detail_threshold, config.verify_threshold) == (-1.0, 0.94)
    assert load_spec(write(tmp_path, MINIMAL)).detail_threshold == DEFAULT_CONFIG.detail_threshold


def test_disabled_source_is_dropped(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL + "[sources.commons]\nenabled = false\n"))
    assert "commons" not in spec.sources


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ('[policy]\nnoassertion = "maybe"\n', "policy.noassertion"),
        ('[network]\nallow_private = "yes"\n', "network.allow_private must be true or false"),
        ("[limits]\nper_class = -3\n", "limits.per_class must be at least 1"),
        ('[sources.nowhere]\nbase_url = "x"\n', "[sources.nowhere] is not a source we know"),
        ("[sources.commons]\nbase_url = 5\n", "sources.commons.base_url must be a string"),
        ('[[classes]]\nname = "beta"\n', "'beta' is used twice"),
        ('contact = "late@example.org"\n', "classes[1].contact is not a key we know"),
        ("[limits]\nper_clas = 3\n", "limits.per_clas is not a key we know"),
        ("[dedup]\ndetail_threshold = -2\n", "dedup.detail_threshold must be at least -1"),
    ],
)
def test_malformed_spec_gets_one_line_naming_file_and_key(tmp_path, extra, fragment):
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_name_invalid_toml_and_unknown_spec(tmp_path):
    with pytest.raises(SpecError, match="missing key name"):
        load_spec(write(tmp_path, '[[classes]]\nname = "a"\n'))
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(write(tmp_path, "name = \n"))
    with pytest.raises(SpecError, match=r"unknown spec; .*acne-l70"):
        load_spec("no-such-spec")
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(SpecError, match=r"classes.*empty"):
        load_spec(write(tmp_path, 'name = "x"\n'))
