"""The vote index's second chance: images the capped first pass leaves unlinked query again."""

from __future__ import annotations

from dataclasses import replace

from imagefactory import make_image
from PIL import ImageOps

from acnedata.dedup import regions
from acnedata.dedup.votes import loner_pairs, vote_pairs


def photo(k: int):
    return make_image(k, size=(256, 256), seed=700 + k)


def collection() -> tuple[list[regions.Features], set[tuple[int, int]]]:
    """Eight strangers and two copies of two of them, at 8 and 9: (features, planted pairs)."""
    strangers = [photo(k) for k in range(8)]
    copies = [
        strangers[1].crop((20, 30, 236, 240)).resize((256, 256)),
        ImageOps.mirror(strangers[6]).rotate(6),
    ]
    return [regions.features(im) for im in strangers + copies], {(1, 8), (6, 9)}


# So small a cap drops every bucket a copy's descriptors share with its photo's: in a self-join
# each descriptor sits in its bucket twice (as query and as index entry), so a key shared by two
# images makes at least three entries (four unless one side is a mirror descriptor).
CRAMPED = replace(regions.DEFAULT_REGION_CONFIG, bucket_cap=2)


def test_an_image_the_capped_index_misses_is_found_by_its_second_chance():
    feats, planted = collection()
    first_pass_only = replace(CRAMPED, loner_bucket_cap=0)
    assert regions.match_within(feats, first_pass_only, workers=1) == []
    found = regions.match_within(feats, CRAMPED, workers=1)
    assert {(m.a, m.b) for m in found} == planted


def test_the_second_chance_asks_only_for_loners_and_never_retries_a_pair():
    feats, _ = collection()
    assert vote_pairs(feats, feats, CRAMPED, self_join=True) == []
    # 1 and 8 linked: the others are loners, and every pair asked for touches one
    asked = loner_pairs(feats, [], {1, 8}, CRAMPED)
    assert (6, 9) in {(i, j) for i, j, _ in asked}
    assert all(i < j and not {i, j} <= {1, 8} for i, j, _ in asked)
    # a pair the first pass already verified (and turned down) is not asked for again
    tried = [(6, 9, regions.BOTH), (0, 6, regions.AS_IS)]
    again = loner_pairs(feats, tried, {1, 8}, CRAMPED)
    assert {(i, j) for i, j, _ in again} == {(i, j) for i, j, _ in asked} - {(6, 9), (0, 6)}
