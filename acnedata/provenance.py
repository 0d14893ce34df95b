"""What an import keeps about where each file came from: group keys, the dataset's split, extras."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from acnedata.errors import AcnedataError, SourceError
from acnedata.sources.base import Candidate

# A Roboflow export renames every file `<upload>_<ext>.rf.<32 hex>.<ext>`; the augmented
# variants of one upload (up to 9) share <upload>, so it is what a split must keep together.
ROBOFLOW_NAME = re.compile(r"^(?P<upload>.+)_(?:jpe?g|png|bmp|webp)\.rf\.[0-9a-f]{32}\.\w+$")

SPLITS = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
}
SPLIT_HELP = "use train, validation or test (training, testing, valid, val and dev are read too)"
DEFAULT_SPLIT_COLUMN = "split"  # taken without --split-col; `roboflow_split` and the like are not


def normalise_split(value: str | None) -> str | None:
    """train / validation / test for a split name in any of its usual spellings, else None."""
    return SPLITS.get((value or "").strip().lower())


def group_regex(text: str | None) -> re.Pattern[str] | None:
    """The compiled --group-from regex; an invalid one is a one-line error naming it."""
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise AcnedataError(
            f"--group-from {text!r}: not a valid regular expression ({exc}); give a Python "
            r"regex whose first group is the key, e.g. '^(.+?)_\d+\.jpg$'"
        ) from None


def key_from_name(pattern: re.Pattern[str], name: str) -> str | None:
    """The regex's first capture group that matched (else the whole match) in a file name."""
    match = pattern.search(name)
    if match is None:
        return None
    key = next((g for g in match.groups() if g), None) or match.group(0)
    return key or None


@dataclass
class CsvColumns:
    """Where the provenance columns of a labels CSV are, and which go to `extra`."""

    group: int | None = None
    split: int | None = None
    split_name: str | None = None
    split_given: bool = False  # named by --split-col, not found by its default name
    extra: list[tuple[int, str]] = field(default_factory=list)  # (index, original header)

    def group_key(self, row: Sequence[str]) -> str | None:
        if self.group is None or self.group >= len(row):
            return None
        return row[self.group].strip() or None

    def extra_of(self, row: Sequence[str]) -> dict[str, str] | None:
        """The row's other columns as strings (a short row's missing cells as ""); None if
        the CSV has no other columns."""
        return {name: row[at] if at < len(row) else "" for at, name in self.extra} or None


def csv_columns(
    csv_path: Path,
    names: Sequence[str],
    used: set[int],
    *,
    group_col: str | None,
    split_col: str | None,
) -> CsvColumns:
    """Resolve --group-col / --split-col (or the default `split` column) in a CSV header.

    `names` are the header cells as written, `used` the indexes already read into the item
    (file, label, title, ...). A named column that is not there is a one-line error listing
    the ones that are.
    """
    low = [n.strip().lower() for n in names]

    def find(option: str, name: str) -> int:
        wanted = name.strip().lower()
        if wanted not in low:
            raise SourceError(
                f"{csv_path}: {option} {name!r}: no such column; the columns are "
                f"{', '.join(n.strip() for n in names)}"
            )
        return low.index(wanted)

    cols = CsvColumns()
    if group_col is not None:
        cols.group = find("--group-col", group_col)
    if split_col is not None:
        cols.split, cols.split_given = find("--split-col", split_col), True
    elif DEFAULT_SPLIT_COLUMN in low:
        cols.split = low.index(DEFAULT_SPLIT_COLUMN)
    if cols.split is not None:
        cols.split_name = names[cols.split].strip()
    taken = used | {c for c in (cols.group, cols.split) if c is not None}
    cols.extra = [(i, n.strip()) for i, n in enumerate(names) if i not in taken and n.strip()]
    return cols


def check_default_split(
    csv_path: Path, cols: CsvColumns, rows: Sequence[Sequence[str]], notes: list[str]
) -> None:
    """A `split` column found by its name but holding something else stays in `extra` only."""
    if cols.split is None or cols.split_given:
        return
    at = cols.split
    odd = next(
        (
            v
            for row in rows
            if at < len(row) and (v := row[at].strip()) and normalise_split(v) is None
        ),
        None,
    )
    if odd is not None:
        notes.append(
            f"{csv_path}: column {cols.split_name!r} holds {odd!r}, which is not a split name; "
            "kept in extra only (name it with --split-col to see which rows)"
        )
        cols.extra = sorted([*cols.extra, (at, cols.split_name or "")])
        cols.split = None


def split_value(csv_path: Path, cols: CsvColumns, row: Sequence[str], line: int) -> str | None:
    """The row's split, normalised; an unreadable one under --split-col is a one-line error."""
    if cols.split is None or cols.split >= len(row) or not row[cols.split].strip():
        return None
    value = row[cols.split].strip()
    split = normalise_split(value)
    if split is None:
        raise SourceError(
            f"{csv_path}: line {line}: column {cols.split_name!r} says {value!r}, which is "
            f"not a split; {SPLIT_HELP}"
        )
    return split


def apply_name_keys(
    cands: Sequence[Candidate], pattern: re.Pattern[str] | None, notes: list[str]
) -> None:
    """Group keys from file names: --group-from's regex, or else Roboflow export names.

    With a regex, every file gets the key it matches (a file that does not match keeps none).
    Without one, files named as Roboflow exports that have no key yet get their upload name,
    and `notes` says so in one line.
    """
    if pattern is not None:
        for cand in cands:
            cand.group_key = key_from_name(pattern, PurePosixPath(cand.source_id).name)
        return
    uploads: set[str] = set()
    named = 0
    for cand in cands:
        if cand.group_key is not None:
            continue
        match = ROBOFLOW_NAME.match(PurePosixPath(cand.source_id).name)
        if match:
            cand.group_key = match.group("upload")
            uploads.add(match.group("upload"))
            named += 1
    if named:
        notes.append(
            f"{named} files named as Roboflow exports: grouped by their {len(uploads)} uploads "
            "(give --group-col or --group-from to group otherwise)"
        )
