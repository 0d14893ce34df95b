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
# already corroborates.
MAX_WITNESSES = 3
# A covering copy's matches must span this share of the widest covering copy's: see below.
WIDE_SHARE = 0.5

Verify = Callable[[list[tuple[int, int]]], set[tuple[int, int]]]


def covering_copies(matches: Sequence) -> dict[int, list[int]]:
    """Image → the images that hold all of it (same, or it is their crop): those whose matched
    keypoints span at least WIDE_SHARE of the widest such copy's (RegionMatch.span), widest
    first.

    The same logo pasted on several small framed pictures links each to the others as `same`,
    sometimes with more inliers than a picture's own copies; counted as a covering copy, it
    vouched for the others' logo links (the transform bench). Its matches span only the logo
    (0.010-0.042 of the image there), a real copy's the picture; the share is the image's own,
    since a small framed picture's real copies span little of the whole image too (0.02-0.11).
    """
    ranked: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
    for m in matches:
        if m.relation in ("same", "crop"):  # m.a is all inside m.b
            ranked[m.a].append((m.span, m.inliers, m.b))
        if m.relation in ("same", "contains"):  # m.b is all inside m.a
            ranked[m.b].append((m.span, m.inliers, m.a))
    out = {}
    for image, found in ranked.items():
        found.sort(reverse=True)
        widest = found[0][0]
        out[image] = [j for span, _, j in found if span >= WIDE_SHARE * widest]
    return out


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
