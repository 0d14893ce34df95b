"""AND/OR licence expressions (SPDX syntax, as Commons and data portals write them) as trees."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import TypeAlias

from license_expression import (
    AND,
    OR,
    ExpressionError,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
    get_spdx_licensing,
)

# A leaf (one licence as written, or the SPDX list's current id of a deprecated one such as
# GFDL-1.2), or ("AND" | "OR", children).
Tree: TypeAlias = str | tuple[str, tuple["Tree", ...]]

_OPERATOR = re.compile(r"\s(?:and|or)\s", re.IGNORECASE)


class _NotSupported(Exception):
    """A WITH exception, which no policy here can judge."""


@lru_cache(maxsize=1)
def _licensing() -> Licensing:
    return get_spdx_licensing()  # ~60 ms once: the SPDX list with its aliases


@lru_cache(maxsize=1024)
def parse(value: str) -> Tree | None:
    """The AND/OR tree of `value`; None when it is one licence, uses WITH, or does not parse."""
    if not _OPERATOR.search(value):
        return None  # the common case, decided without the parser
    try:
        parsed = _licensing().parse(value)
        return _tree(parsed) if isinstance(parsed, (AND, OR)) else None
    except (ExpressionError, _NotSupported):
        return None


def _tree(node: object) -> Tree:
    if isinstance(node, LicenseWithExceptionSymbol):
        raise _NotSupported
    if isinstance(node, LicenseSymbol):
        return str(node.key)
    op = "AND" if isinstance(node, AND) else "OR"
    return (op, tuple(_tree(arg) for arg in node.args))  # type: ignore[attr-defined]


def leaves(tree: Tree) -> list[str]:
    """Every licence the tree names, in order."""
    if isinstance(tree, str):
        return [tree]
    return [leaf for child in tree[1] for leaf in leaves(child)]


def map_leaves(tree: Tree, fn: Callable[[str], str]) -> Tree:
    """`tree` with each leaf replaced by fn(leaf); repeats under one operator are dropped and an
    operator left with one child becomes that child ("CC BY 4.0 OR CC-BY-4.0" is one licence)."""
    if isinstance(tree, str):
        return fn(tree)
    op, children = tree
    mapped: list[Tree] = []
    for child in children:
        new = map_leaves(child, fn)
        if new not in mapped:
            mapped.append(new)
    return mapped[0] if len(mapped) == 1 else (op, tuple(mapped))


def render(tree: Tree) -> str:
    """The SPDX expression of `tree`, with brackets only where an operator nests another."""
    if isinstance(tree, str):
        return tree
    op, children = tree
    return f" {op} ".join(
        render(child) if isinstance(child, str) else f"({render(child)})" for child in children
    )
