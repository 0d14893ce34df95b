"""Sort items into classes by the spec's criteria; doubtful ones go to review, not the manifest."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from acnedata.spec import DatasetSpec


def fold(text: str) -> str:
    """Case- and accent-insensitive form (NFKD splits Hangul into jamo, the same on both sides)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class ClassScore:
    name: str
    score: float
    matched: tuple[str, ...]


def score_text(spec: DatasetSpec, texts: Iterable[str]) -> dict[str, ClassScore]:
    """Score each class by how many of its terms (and aliases) occur in the item's texts."""
    haystack = fold(" | ".join(t for t in texts if t))
    scores = {}
    for cls in spec.classes:
        terms = {*cls.all_terms(), cls.name, *cls.aliases}
        matched = tuple(sorted(t for t in terms if fold(t) in haystack))
        scores[cls.name] = ClassScore(cls.name, float(len(matched)), matched)
    return scores


def excluded_terms(spec: DatasetSpec, klass: str, texts: Iterable[str]) -> list[str]:
    haystack = fold(" | ".join(t for t in texts if t))
    cls = spec.class_named(klass)
    return [t for t in cls.exclude if fold(t) in haystack]


@dataclass(frozen=True)
class Assignment:
    """A provisional class with a reason, and why a person must look at it (None: no review)."""

    label: str | None
    reason: str
    review: str | None


def assign(
    spec: DatasetSpec,
    *,
    found_for: list[str],
    cluster_classes: set[str],
    texts: list[str],
    query: str | None = None,
    licence_review: str | None = None,
) -> Assignment:
    """Provisional class for one item from the class(es) whose search found it and its text."""
    if len(cluster_classes) > 1:
        names = ", ".join(sorted(cluster_classes))
        where = "this item" if len(set(found_for)) > 1 else "its duplicate cluster"
        return Assignment(
            None, f"conflict: {where} was found for {names}", f"cross-class conflict ({names})"
        )
    klass = next(iter(cluster_classes), None) or (found_for[0] if found_for else None)
    if klass is None:
        scores = score_text(spec, texts)
        best = max(scores.values(), key=lambda s: s.score)
        if best.score == 0:
            return Assignment(
                None, "no class: no search or text names one", "no class could be assigned"
            )
        klass = best.name
    why = f"found by search {query!r} for {klass}" if query else f"labelled {klass} by its source"
    excluded = excluded_terms(spec, klass, texts)
    if excluded:
        return Assignment(klass, why, f"excluded term {excluded[0]!r} in its title or text")
    scores = score_text(spec, texts)
    own = scores[klass].score
    rival = max(
        (s for s in scores.values() if s.name != klass), key=lambda s: s.score, default=None
    )
    if rival is not None and rival.score >= own + spec.sort_margin and rival.score > 0:
        return Assignment(
            klass,
            why,
            f"its text points to {rival.name} ({', '.join(rival.matched)}) more than to {klass}",
        )
    if licence_review:
        return Assignment(klass, why, licence_review)
    return Assignment(klass, why, None)
