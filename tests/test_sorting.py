"""Sorting by criteria: search evidence, text in any language, exclusions, margins, conflicts."""

from acnedata.sorting import assign, class_scores, fold
from acnedata.spec import load_spec

SPEC = load_spec("acne-l70")


def test_fold_is_case_and_accent_insensitive_and_keeps_korean_matching():
    assert fold("PÚSTULAR Acne") == fold("pustular acne")
    assert fold("농포성 여드름") in fold("사진: 농포성 여드름 환자")


def test_found_by_search_and_text_agree():
    a = assign(
        SPEC,
        found_for=["pustular"],
        cluster_classes={"pustular"},
        texts=["Pustular acne on the cheek"],
        query="pustular acne",
    )
    assert a.label == "pustular" and a.review is None
    assert "pustular via 'pustular acne'" in a.reason and "found by its search" in a.reason


def test_korean_text_alone_assigns_a_class():
    a = assign(SPEC, found_for=[], cluster_classes=set(), texts=["결절낭포성 여드름 사진"])
    assert a.label == "nodulocystic" and a.review is None


def test_text_pointing_elsewhere_sends_to_review():
    a = assign(
        SPEC,
        found_for=["papular"],
        cluster_classes={"papular"},
        texts=["Cystic acne, nodular acne and acne conglobata"],
    )
    assert a.label == "nodulocystic"
    assert a.review == "text points to nodulocystic, search found it for papular"
    scores = dict(
        (n, s)
        for n, s, _ in class_scores(
            SPEC, found_for=["papular"], texts=["Cystic acne, nodular acne and acne conglobata"]
        )
    )
    assert scores["nodulocystic"] > scores["papular"]


def test_close_scores_go_to_review():
    # papular: its search (2); pustular: "pustular acne" and "pustular" in the text (2)
    a = assign(SPEC, found_for=["papular"], cluster_classes={"papular"}, texts=["pustular acne"])
    assert a.review == "too close to call: papular 2 vs pustular 2"


def test_exclusion_term_goes_to_review():
    a = assign(
        SPEC,
        found_for=["comedonal"],
        cluster_classes={"comedonal"},
        texts=["Blackhead cartoon illustration"],
    )
    assert a.label == "comedonal" and "excluded term" in a.review


def test_cross_class_cluster_is_a_conflict():
    a = assign(SPEC, found_for=["papular"], cluster_classes={"papular", "pustular"}, texts=[])
    assert a.label is None and a.review == "cross-class conflict (papular, pustular)"


def test_nothing_matches():
    a = assign(SPEC, found_for=[], cluster_classes=set(), texts=["a cat"])
    assert a.label is None and a.review == "no class matched"


def test_licence_review_is_kept_when_class_is_clear():
    a = assign(
        SPEC,
        found_for=["papular"],
        cluster_classes={"papular"},
        texts=[],
        licence_review="licence NOASSERTION needs a person's check",
    )
    assert a.label == "papular" and a.review.startswith("licence NOASSERTION")
