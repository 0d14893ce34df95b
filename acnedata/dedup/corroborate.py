"""Corroboration: a shared region must also be in the other copies of the image that holds it.

A logo, caption bar or watermark pasted on two different photos can pass every pairwise check
when it is all the two images share (a rotated or mirrored logo laid on the other's logo agrees
perfectly). But the overlay belongs to the copy, not to the photo: the photo's other copies do
not have it. So a link between a and b is kept only when a copy that covers all of a (a `same`
image, or one a is a crop of) also shares a region with b, or a copy that covers all of b shares
one with a. Only a link whose two images both have such copies is judged; any other is kept as
it is: a missed link would leak, while a kept one only costs a larger group.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence

from acnedata.dedup.keypoints import Features

log = logging.getLogger(__name__)

# How many covering copies per side are verified against the other image when no found link
# already corroborates: the copies with the most inliers come first.
MAX_WITNESSES = 3
# A copy covers an image only if the keypoints that matched them span this share of one of
# the two. The same logo pasted on several photos links each to all the others as `same`, and
# such a copy would then vouch for the others' logo links; on the transform bench those links
# spanned 0.010-0.042, and 99.7% of 15,520 true links 0.05 or more (bench/dedup_quality.py
# files, a diagnostic).
MIN_COVER_SPAN = 0.05

Verify = Callable[[list[tuple[int, int]]], set[tuple[int, int]]]


def covering_copies(matches: Sequence) -> dict[int, list[int]]:
    """Image → the images that hold all of it (same, or it is their crop), most inliers first;
    links whose matches span under MIN_COVER_SPAN of both images do not count."""
    ranked: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for m in matches:
        if m.span < MIN_COVER_SPAN:
            continue  # an overlay's link, or too little of either image to say it covers
        if m.relation in ("same", "crop"):  # m.a is all inside m.b
            ranked[m.a].append((m.inliers, m.b))
        if m.relation in ("same", "contains"):  # m.b is all inside m.a
            ranked[m.b].append((m.inliers, m.a))
    return {i: [j for _, j in sorted(found, reverse=True)] for i, found in ranked.items()}


def corroborate(
    feats: Sequence[Features | None],
    matches: Sequence,
    verify: Verify,
) -> list:
    """The matches whose shared region a covering copy of either image confirms (or that have
    no covering copies to ask). `verify(pairs)` checks pairs not found yet and returns the
    ones that share a region, as (i, j) with i < j."""
    linked = {(min(m.a, m.b), max(m.a, m.b)) for m in matches}
    covers = covering_copies(matches)

    def witnesses(side: int, other: int) -> list[tuple[int, int]]:
        """(copy of side, other) pairs, as (i, j) with i < j, that would corroborate the link."""
        copies = [c for c in covers.get(side, ()) if c != other][:MAX_WITNESSES]
        return [(min(c, other), max(c, other)) for c in copies if feats[c] is not None]

    asked: dict[int, list[tuple[int, int]]] = {}
    for k, m in enumerate(matches):
        from_a, from_b = witnesses(m.a, m.b), witnesses(m.b, m.a)
        # Both sides must have copies to ask: an overlay pasted on two photos leaves each photo
        # its own plain copies, while a heavy crop linked only to its photo has none, and that
        # link is all that keeps it in its photo's group.
        if from_a and from_b and not any(p in linked for p in from_a + from_b):
            asked[k] = from_a + from_b
    confirmed = verify(sorted({p for pairs in asked.values() for p in pairs})) if asked else set()
    dropped = [k for k, pairs in asked.items() if not any(p in confirmed for p in pairs)]
    if dropped:
        log.info(
            "region links: %d of %d dropped, their shared region is in no other copy of either "
            "image (an overlay such as a logo or caption); %d pairs verified to decide",
            len(dropped),
            len(matches),
            sum(map(len, asked.values())),
        )
    gone = set(dropped)
    return [m for k, m in enumerate(matches) if k not in gone]
