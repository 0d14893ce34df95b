"""A classifier's suggestions for review: read a predictions JSON file, match it to items, rank.

The file is plain JSON (`acnemodel predict RUN IMAGES... --json`); acnedata never imports
TensorFlow. Predictions find their item by the sha256 of the image file, else by its path.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from acnedata.errors import AcnedataError

FORMAT = "acnemodel-predictions/1"


def load_suggestions(path: str | Path) -> dict[str, Any]:
    """The predictions document, checked: one-line AcnedataError naming the file otherwise."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AcnedataError(
            f"--suggestions {path}: no such file; write one with "
            "`acnemodel predict RUN IMAGES... --json > preds.json`"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = str(exc).splitlines()[0]
        raise AcnedataError(f"--suggestions {path}: not a JSON file ({reason})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise AcnedataError(
            f"--suggestions {path}: not an acnemodel predictions file (format {FORMAT}); "
            "write one with `acnemodel predict RUN IMAGES... --json`"
        )
    rows = doc.get("predictions")
    if not isinstance(rows, list):
        raise AcnedataError(f"--suggestions {path}: 'predictions' must be a list")
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or "path" not in row:
            raise AcnedataError(f"--suggestions {path}: prediction {n} has no path")
        if "error" in row:
            continue
        conf = row.get("confidence")
        if not isinstance(row.get("label"), str) or not isinstance(conf, (int, float)):
            raise AcnedataError(
                f"--suggestions {path}: prediction {n} ({row['path']}) lacks label or confidence"
            )
    return doc


def match_suggestions(
    rows: Iterable[sqlite3.Row], out_dir: str | Path, doc: Mapping[str, Any]
) -> dict[int, dict[str, Any]]:
    """Catalog item id → its suggestion {label, confidence, probabilities, low_confidence}."""
    out_dir = Path(out_dir).resolve()
    by_sha: dict[str, dict[str, Any]] = {}
    by_path: dict[str, dict[str, Any]] = {}
    for p in doc["predictions"]:
        if "error" in p:
            continue
        if p.get("sha256"):
            by_sha[p["sha256"]] = p
        by_path[str(Path(p["path"]).resolve())] = p
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        p = by_sha.get(row["sha256"] or "")
        if p is None and row["file"]:
            p = by_path.get(str((out_dir / row["file"]).resolve()))
        if p is not None:
            found[row["id"]] = {
                "label": p["label"],
                "confidence": float(p["confidence"]),
                "low_confidence": bool(p.get("low_confidence", False)),
                "probabilities": p.get("probabilities") or {},
                "disagrees": p["label"] != row["label"],
            }
    return found


def uncertainty_order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most doubtful first: items with a suggestion by rising confidence, then the rest as given.

    sorted() is stable, so equal confidences keep the queue's own (catalog) order.
    """

    def key(item: dict[str, Any]) -> tuple[int, float]:
        s = item.get("suggestion")
        return (0, s["confidence"]) if s else (1, 0.0)

    return sorted(items, key=key)
