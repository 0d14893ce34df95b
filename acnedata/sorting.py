"""Sort items into classes by the spec's criteria; doubtful ones go to review, not the manifest."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from acnedata.spec import DatasetSpec


def fold(text: str) -> str:
    """Case- and accent-insensitive form (NFKD splits Hangul into jamo, the same on both sides)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# A spec's terms are folded for every item scored: once each is enough.
_fold_term = lru_cache(maxsize=4096)(fold)


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
        matched = tuple(sorted(t for t in terms if _fold_term(t) in haystack))
        scores[cls.name] = ClassScore(cls.name, float(len(matched)), matched)
    return scores


def excluded_terms(spec: DatasetSpec, klass: str, texts: Iterable[str]) -> list[str]:
    haystack = fold(" | ".join(t for t in texts if t))
    cls = spec.class_named(klass)
    return [t for t in cls.exclude if _fold_term(t) in haystack]


SEARCH_WEIGHT = 2.0  # being found by a class's own search counts as two matching terms


@dataclass(frozen=True)
class Assignment:
    """A provisional class with a reason, and why a person must look at it (None: no review)."""

    label: str | None
    reason: str
    review: str | None


def class_scores(
    spec: DatasetSpec, *, found_for: Iterable[str], texts: list[str]
) -> list[tuple[str, float, str]]:
    """(class, score, human-readable why) per class, best first; ties keep spec order."""
    found = set(found_for)
    text = score_text(spec, texts)
    rows = []
    for cls in spec.classes:
        parts, score = [], text[cls.name].score
        if cls.name in found:
            score += SEARCH_WEIGHT
            parts.append("found by its search")
        if text[cls.name].matched:
            parts.append("text: " + ", ".join(text[cls.name].matched))
        rows.append((cls.name, score, "; ".join(parts) or "no evidence"))
    order = {c.name: i for i, c in enumerate(spec.classes)}
    return sorted(rows, key=lambda r: (-r[1], order[r[0]]))


def assign(
    spec: DatasetSpec,
    *,
    found_for: list[str],
    cluster_classes: set[str],
    texts: list[str],
    query: str | None = None,
    licence_review: str | None = None,
) -> Assignment:
    """Provisional class from the class(es) whose search found the item and from its text.

    Auto-assigned only when the best class leads the next by the spec's margin; a duplicate
    cluster whose members were found for different classes is a conflict for a person.
    """
    if len(cluster_classes) > 1:
        names = ", ".join(sorted(cluster_classes))
        where = "this item" if len(set(found_for)) > 1 else "its duplicate cluster"
        return Assignment(
            None, f"conflict: {where} was found for {names}", f"cross-class conflict ({names})"
        )
    scores = class_scores(spec, found_for=found_for or cluster_classes, texts=texts)
    best, best_score, _ = scores[0]
    runner, runner_score, _ = scores[1] if len(scores) > 1 else (None, 0.0, "")
    summary = "; ".join(f"{n} {sc:g} ({why})" for n, sc, why in scores if sc > 0)
    if best_score == 0:
        return Assignment(None, "no class: no search or text names one", "no class matched")
    via = f" via {query!r}" if query and best in found_for else ""
    reason = f"{best}{via}: {summary}"
    excluded = excluded_terms(spec, best, texts)
    if excluded:
        return Assignment(best, reason, f"excluded term {excluded[0]!r} in its title or text")
    if found_for and best not in found_for:
        searched = ", ".join(sorted(set(found_for)))
        return Assignment(best, reason, f"text points to {best}, search found it for {searched}")
    if runner is not None and best_score - runner_score < spec.sort_margin:
        return Assignment(
            best, reason, f"too close to call: {best} {best_score:g} vs {runner} {runner_score:g}"
        )
    return Assignment(best, reason, licence_review)
