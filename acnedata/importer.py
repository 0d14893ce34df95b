"""Import an existing dataset (folder, CSV, archive, URL) with its licence and citation per item."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from acnedata import licence_expressions as expressions
from acnedata.catalog import CATALOG_NAME, Catalog
from acnedata.distributed import RayOptions
from acnedata.errors import AcnedataError, DiskFullError, SourceError, is_disk_full
from acnedata.http import HttpConfig, PoliteSession, redact
from acnedata.licensing import (
    NOASSERTION,
    UNVERSIONED,
    normalise,
    normalise_fields,
    terms,
    verdict,
)
from acnedata.pipeline import Collector, Reporter, Summary
from acnedata.provenance import (
    apply_name_keys,
    check_default_split,
    csv_columns,
    group_regex,
    normalise_split,
    split_value,
)
from acnedata.sources.base import Candidate
from acnedata.sources.folder import IMAGE_SUFFIXES, folder_candidates
from acnedata.spec import MOSAIC_POLICIES, MOSAIC_POLICY_HELP, DatasetSpec, spec_from_dict

IMPORT_DIR = "_import"  # under the output folder: downloads/ and extracted archives
MAX_EXTRACT_BYTES = 8 * 1024**3  # uncompressed bytes one archive may unpack to
# Zip bombs: an archive may unpack to MAX_RATIO times its own size (a zip member: its compressed
# size), or to RATIO_FLOOR whatever its size. Photos hardly compress; deflate's best is ~1,030.
MAX_RATIO = 100
RATIO_FLOOR = 16 * 1024**2
MAX_MEMBERS = 500_000
# PoliteSession.fetch holds a download in memory; bigger archives: download by hand, import file.
MAX_DOWNLOAD_BYTES = 1024**3
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
SPLIT_NAMES = frozenset(
    {"train", "training", "test", "testing", "val", "valid", "validation", "dev", "eval"}
)
JUNK_NAMES = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db"})
# Besides images, only files that describe the dataset are unpacked.
META_SUFFIXES = frozenset({".csv", ".tsv", ".json", ".jsonl", ".txt", ".md", ".cff", ".bib"})
FILE_COLUMNS = ("file", "file_name", "filename", "path", "image", "image_path")
LABEL_COLUMNS = ("label", "class", "category")
_ITEM_COLUMNS = ("title", "author", "page_url")  # other CSV columns read into the item itself
LICENCE_EXAMPLES = "CC-BY-4.0, CC-BY-SA-4.0, CC0-1.0, CC-BY-NC-4.0, LicenseRef-KOGL-Type-1"
_ZENODO_RECORD = re.compile(r"^/(?:api/)?records?/(\d+)/?$")
_CHUNK = 1 << 20


@dataclass
class _About:
    """What the import records about the dataset; a Zenodo record fills in what was not given."""

    author: str | None
    citation: str | None
    title: str | None
    page_url: str | None


def resolve_licence(licence: str) -> str:
    """The SPDX id (or LicenseRef-…) for `licence`; an unrecognised string is a one-line error."""
    spdx = normalise(licence)
    if spdx == NOASSERTION:
        raise AcnedataError(
            f"--licence {licence!r} is not a licence we recognise; give an SPDX "
            f"id such as {LICENCE_EXAMPLES}"
        )
    # A licence's versions differ in their terms: the dataset's own statement says which.
    if any(part in UNVERSIONED for part in expressions.leaves(expressions.parse(spdx) or spdx)):
        raise AcnedataError(
            f"--licence {licence!r} names no version; give the version the dataset states, "
            f"such as {LICENCE_EXAMPLES}"
        )
    return spdx


def import_dataset(
    source: str | Path,
    out_dir: Path,
    *,
    licence: str,
    author: str | None = None,
    citation: str | None = None,
    title: str | None = None,
    page_url: str | None = None,
    labels_csv: Path | None = None,
    session: PoliteSession | None = None,
    reporter: Reporter | None = None,
    contact: str | None = None,
    max_extract_bytes: int = MAX_EXTRACT_BYTES,
    group_col: str | None = None,
    split_col: str | None = None,
    group_from: str | None = None,
    mosaics: str = "exclude",
    ray: RayOptions | None = None,
) -> Summary:
    """Import a dataset into `out_dir` through the normal pipeline and write its manifest.

    `source` is one of: a folder with one subfolder per class (train/test/... split folders
    above the class folders are merged); a CSV of labels (file,label columns, paths relative to
    the CSV); a local .zip or .tar(.gz) of class folders; an http(s) URL of such an archive
    (a Zenodo file URL, a Hugging Face `.../resolve/main/x.zip` URL, ...); or a Zenodo record URL
    (`https://zenodo.org/records/N`) whose one archive file is taken. `labels_csv` gives the
    labels for a folder or archive instead of its subfolders. Local inputs never touch the
    network. Every item gets `licence` (which the generated policy allows and nothing else),
    `author`, `page_url`, and `citation` as its attribution, so they reach the manifest and
    ATTRIBUTION.md. `session` (or one made with `contact`) is used for URLs only.

    Provenance: a CSV's `group_col` gives each item a group key (items with one key stay on
    one side of a split), `split_col` (default: a column named `split`) its split, and its
    other columns are kept as the item's `extra`. `group_from`, a regex, takes the key from
    each file name instead; without either, Roboflow export names are grouped by upload.
    `mosaics` ("exclude", "group" or "follow") is the [dedup] mosaics policy for images tiled from
    several photos.
    Split folders (train/, test/, ...) give their items that split.
    `ray`: validate, store and sign the files on a Ray cluster (the extracted folder and
    `out_dir` must be on storage every node mounts at the same path).
    """
    if mosaics not in MOSAIC_POLICIES:
        raise AcnedataError(f"--mosaics {mosaics}: use {MOSAIC_POLICY_HELP}")
    spdx = resolve_licence(licence)
    pattern = group_regex(group_from)
    if group_col is not None and pattern is not None:
        raise AcnedataError("--group-col and --group-from both given; use one of them")
    out_dir = Path(out_dir)
    staging = out_dir / IMPORT_DIR
    about = _About(author, citation, title, page_url)
    text = str(source)
    if re.match(r"^https?://", text, re.IGNORECASE):
        own = session is None
        # robots.txt governs crawlers; this is one file the user named, like curl or pooch.
        session = session or PoliteSession(HttpConfig(contact=contact or "", respect_robots=False))
        try:
            local = _download(text, staging, session, about, spdx)
        finally:
            if own:
                session.close()
        about.page_url = about.page_url or text
    else:
        local = Path(source).expanduser()
        if not local.exists():
            raise AcnedataError(
                f"{local}: not found; give a folder of class subfolders, a .zip "
                "or .tar archive, a labels .csv, or an http(s) URL"
            )
    if local.is_file() and local.suffix.lower() == ".csv" and labels_csv is None:
        labels_csv, root = local, local.parent
    elif local.is_file():
        root = extract_archive(local, staging, max_bytes=max_extract_bytes)
    else:
        root = local
    root = root.resolve()

    notes: list[str] = []
    if labels_csv is not None:
        labels_csv = Path(labels_csv)
        if not labels_csv.exists() and (root / labels_csv).is_file():
            labels_csv = root / labels_csv  # a CSV shipped inside the archive or folder
        cands, skipped = csv_candidates(
            labels_csv,
            root,
            spdx=spdx,
            author=about.author,
            page_url=about.page_url,
            citation=about.citation,
            group_col=group_col,
            split_col=split_col,
            notes=notes,
        )
        if skipped and reporter is not None:
            reporter.note(f"{labels_csv}: {skipped} rows without a label were left out")
        origin = root
    else:
        for option, value in (("--group-col", group_col), ("--split-col", split_col)):
            if value is not None:
                raise AcnedataError(
                    f"{option} {value}: needs a labels CSV (import the CSV, or give --labels)"
                )
        origin, cands = _class_folder_candidates(root, spdx, about)
    if not cands:
        raise AcnedataError(
            f"{root}: no images found; expected {root}/<class>/<image> (or give --labels CSV)"
        )
    if group_col is None:
        apply_name_keys(cands, pattern, notes)

    spec = import_spec(
        cands,
        origin,
        spdx=spdx,
        title=about.title,
        author=about.author,
        citation=about.citation,
        page_url=about.page_url,
        source=text,
        labels_csv=labels_csv,
        mosaics=mosaics,
    )
    _refuse_other_catalog(out_dir, spec)
    with Collector(spec, out_dir, reporter=reporter, ray=ray) as col:
        with col.catalog.transaction():
            ids = col.catalog.add_candidates(cands)
            # an import run again with other provenance options replaces the first run's
            col.catalog.set_provenance(
                (item_id, c.group_key, c.split, c.extra)
                for (item_id, _), c in zip(ids, cands, strict=True)
            )
        # The candidates are in: a later `collect`/resume must not search the folder again
        # (FolderSource knows no citation and would not find CSV-labelled files).
        col.catalog.set_meta("search_done:folder", spec.sha256)
        summary = col.build()  # the folder counts as searched: build starts at the licence gate
    summary.notes = notes + summary.notes
    return summary


def import_spec(
    cands: list[Candidate],
    root: Path,
    *,
    spdx: str,
    title: str | None = None,
    author: str | None = None,
    citation: str | None = None,
    page_url: str | None = None,
    source: str = "",
    labels_csv: Path | None = None,
    mosaics: str = "exclude",
) -> DatasetSpec:
    """The spec of an import: classes = the labels found, policy = exactly the given licence."""
    classes = sorted({c.label_hint for c in cands if c.label_hint})
    name = _slug(title or _stem(Path(urlsplit(source).path).name) or root.name)
    t = terms(spdx)
    folder: dict[str, Any] = {"path": str(root), "licence": spdx}
    given = {
        "author": author,
        "page_url": page_url,
        "citation": citation,
        "labels": str(labels_csv) if labels_csv else None,
    }
    folder.update({k: v for k, v in given.items() if v})
    raw: dict[str, Any] = {
        "name": name,
        "title": title or name,
        "description": f"Imported by acnedata import from {redact(source) or root}",
        "keywords": [name],
        "policy": {
            "allow": [spdx],
            "noncommercial": t.commercial is False,
            "no_derivatives": not t.derivatives,
            "noassertion": "reject",
        },
        # An imported dataset keeps its images as published: size is a collection criterion.
        "limits": {"per_class": max(1, len(cands)), "min_width": 1, "min_height": 1},
        # Its labels are the dataset's own: the folder (or CSV) class wins by any lead over a
        # class the file name happens to mention, never "too close to call".
        "sort": {"margin": 0.0},
        "dedup": {"mosaics": mosaics},
        "sources": {"folder": folder},
        "classes": [{"name": c} for c in classes],
    }
    spec = spec_from_dict(raw, where=f"import:{redact(source) or root}")
    v = verdict(spdx, spec.policy)
    if v.decision != "allow":  # e.g. a retired licence, which no policy accepts
        raise AcnedataError(f"--licence {spdx}: cannot be imported ({v.reason})")
    return spec


# --- finding the images ---------------------------------------------------------------------


def _visible_dirs(path: Path) -> list[Path]:
    return sorted(
        p
        for p in path.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in JUNK_NAMES
    )


def _has_images(path: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())


def class_roots(root: Path) -> list[tuple[str, Path]]:
    """(prefix, folder whose subfolders are classes): a lone wrapper folder is stepped into,
    and split folders (train/, test/, ...) each count, their classes merged."""
    while True:
        dirs = _visible_dirs(root)
        if len(dirs) == 1 and not _has_images(root) and _visible_dirs(dirs[0]):
            root = dirs[0]  # e.g. the top folder a zip of "dataset/<class>/..." unpacks to
            continue
        break
    dirs = _visible_dirs(root)
    if dirs and all(d.name.lower() in SPLIT_NAMES and _visible_dirs(d) for d in dirs):
        return [(d.name, d) for d in dirs]
    return [("", root)]


def _class_folder_candidates(root: Path, spdx: str, about: _About) -> tuple[Path, list[Candidate]]:
    if not root.is_dir():
        raise SourceError(f"{root}: folder not found; give a folder with one subfolder per class")
    roots = class_roots(root)
    cands: list[Candidate] = []
    for prefix, class_root in roots:
        for cand in folder_candidates(
            class_root,
            licence=spdx,
            author=about.author,
            page_url=about.page_url,
            label_map=lambda label: None if label in JUNK_NAMES else label,
            citation=about.citation,
            within=root,
        ):
            if prefix:  # train/x.jpg and test/x.jpg are different items
                cand.source_id = f"{prefix}/{cand.source_id}"
                cand.split = normalise_split(prefix)  # eval/ is too vague to say which
            cand.attribution = about.citation
            cands.append(cand)
    return (roots[0][1] if len(roots) == 1 else root), cands


def csv_candidates(
    csv_path: Path,
    root: Path,
    *,
    spdx: str,
    author: str | None = None,
    page_url: str | None = None,
    citation: str | None = None,
    group_col: str | None = None,
    split_col: str | None = None,
    notes: list[str] | None = None,
) -> tuple[list[Candidate], int]:
    """Candidates from a CSV of labels; (candidates, rows without a label).

    Columns: a file column (file, file_name, path, ...) and a label column (label, class,
    category); optional title, author and page_url. Paths are relative to the CSV's folder or
    to `root`, and must stay inside one of them. `group_col` and `split_col` (default: a
    column named `split`) give each item its group key and split; the other columns are kept
    as the item's `extra` (strings). Remarks for the user are appended to `notes`.
    """
    bases = list(dict.fromkeys([csv_path.resolve().parent, root.resolve()]))
    try:
        with csv_path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise SourceError(f"{csv_path}: labels CSV not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"{csv_path}: cannot read the labels CSV ({exc})") from None
    if not rows:
        raise SourceError(f"{csv_path}: empty; give a header row with file and label columns")
    header = [h.strip().lower() for h in rows[0]]
    file_col = next((header.index(c) for c in FILE_COLUMNS if c in header), None)
    label_col = next((header.index(c) for c in LABEL_COLUMNS if c in header), None)
    if file_col is None or label_col is None:
        raise SourceError(
            f"{csv_path}: needs a file column ({', '.join(FILE_COLUMNS)}) and a "
            f"label column ({', '.join(LABEL_COLUMNS)}); found {', '.join(header)}"
        )

    def cell(row: list[str], name: str) -> str:
        at = header.index(name) if name in header else len(row)
        return row[at].strip() if at < len(row) else ""

    read = {file_col, label_col} | {header.index(c) for c in _ITEM_COLUMNS if c in header}
    cols = csv_columns(csv_path, rows[0], read, group_col=group_col, split_col=split_col)
    check_default_split(csv_path, cols, rows[1:], notes if notes is not None else [])

    cands: list[Candidate] = []
    skipped = 0
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        rel = row[file_col].strip() if file_col < len(row) else ""
        label = row[label_col].strip() if label_col < len(row) else ""
        if not rel:
            raise SourceError(f"{csv_path}: line {line} has no file")
        if not label:
            skipped += 1
            continue
        path, base = _inside(rel, bases, csv_path, line)
        cands.append(
            Candidate(
                source="folder",
                source_id=path.relative_to(base).as_posix(),
                url=path.as_uri(),
                page_url=cell(row, "page_url") or page_url,
                title=cell(row, "title") or path.stem,
                author=cell(row, "author") or author,
                attribution=citation,
                licence_raw={k: v for k, v in (("licence", spdx), ("citation", citation)) if v},
                label_hint=label,
                searched_class=label,
                group_key=cols.group_key(row),
                split=split_value(csv_path, cols, row, line),
                extra=cols.extra_of(row),
            )
        )
    return cands, skipped


def _inside(rel: str, bases: list[Path], csv_path: Path, line: int) -> tuple[Path, Path]:
    """The file `rel` names under the first base that has it; never a path outside them."""
    inside: list[tuple[Path, Path]] = []
    for base in bases:
        path = (base / rel.replace("\\", "/")).resolve()
        if path.is_relative_to(base):
            if path.is_file():
                return path, base
            inside.append((path, base))
    if inside:
        return inside[0]  # missing: the download stage records it as a per-item failure
    raise SourceError(
        f"{csv_path}: line {line}: {rel!r} points outside {bases[0]}; paths must "
        "stay inside the dataset folder"
    )


# --- archives -------------------------------------------------------------------------------


def extract_archive(archive: Path, staging: Path, *, max_bytes: int = MAX_EXTRACT_BYTES) -> Path:
    """Unpack `archive` safely into staging/<name>-<sha256[:12]>/ (reused if already there)."""
    if not (zipfile.is_zipfile(archive) or tarfile.is_tarfile(archive)):
        raise SourceError(f"{archive}: not a folder, a zip or tar archive, or a labels .csv")
    digest = hashlib.sha256()
    with archive.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    dest = staging / f"{_slug(_stem(archive.name))}-{digest.hexdigest()[:12]}"
    if dest.is_dir():
        return dest  # unpacked by an earlier run; the name carries the archive's hash
    made = [p for p in (staging, *staging.parents) if not p.exists()]  # deepest first
    staging.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=staging, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        safe_extract(archive, tmp, max_bytes=max_bytes)
        os.replace(tmp, dest)
    except BaseException:
        # A refused archive leaves nothing behind: no partial files, no folders made for it.
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: never anything that was there before
        raise
    return dest


def safe_extract(
    archive: Path,
    dest: Path,
    *,
    max_bytes: int = MAX_EXTRACT_BYTES,
    max_members: int = MAX_MEMBERS,
    max_ratio: int = MAX_RATIO,
) -> int:
    """Unpack images and metadata files of a zip or tar into `dest`; returns bytes written.

    Every member is checked before anything is written: absolute paths, `..`, links, devices
    and encrypted members refuse the whole archive, as do more than `max_bytes` declared or
    actually decompressed (a lying header stops at the cap), more than `max_ratio` times the
    archive's size (or a zip member's compressed size; RATIO_FLOOR is always allowed), and more
    than the free space where `dest` is.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _check_count(archive, len(infos), max_members)
            plan = []
            for info in infos:
                rel = _member_path(archive, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise SourceError(
                        f"{archive}: member {info.filename!r} is a symbolic link; "
                        "refusing to extract"
                    )
                if info.flag_bits & 0x1:
                    raise SourceError(
                        f"{archive}: member {info.filename!r} is encrypted; "
                        "decrypt the archive first"
                    )
                if not info.is_dir() and rel is not None and _wanted(rel):
                    _check_ratio(
                        archive, info.filename, info.file_size, info.compress_size, max_ratio
                    )
                    plan.append((rel, info.file_size, info))
            declared = sum(size for _, size, _ in plan)
            _check_declared(archive, declared, max_bytes, max_ratio, dest)
            return _write_all(archive, dest, plan, lambda info: zf.open(info), max_bytes)
    if tarfile.is_tarfile(archive):
        try:
            with tarfile.open(archive, "r:*") as tf:
                members = tf.getmembers()
                _check_count(archive, len(members), max_members)
                plan = []
                for m in members:
                    rel = _member_path(archive, m.name)
                    if m.issym() or m.islnk():
                        raise SourceError(
                            f"{archive}: member {m.name!r} is a link; refusing to extract"
                        )
                    if m.isdir():
                        continue
                    if not m.isfile():
                        raise SourceError(
                            f"{archive}: member {m.name!r} is not a regular file; "
                            "refusing to extract"
                        )
                    if rel is not None and _wanted(rel):
                        plan.append((rel, m.size, m))
                declared = sum(size for _, size, _ in plan)
                _check_declared(archive, declared, max_bytes, max_ratio, dest)
                return _write_all(archive, dest, plan, tf.extractfile, max_bytes)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise SourceError(f"{archive}: damaged tar archive ({exc})") from None
    raise SourceError(f"{archive}: not a zip or tar archive")


def _member_path(archive: Path, name: str) -> PurePosixPath | None:
    """The member's path inside the archive, None for junk; unsafe names refuse the archive."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or "\x00" in norm:
        raise SourceError(
            f"{archive}: member {name!r} has an absolute path; refusing to extract (path traversal)"
        )
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SourceError(
            f"{archive}: member {name!r} points outside the archive folder; "
            "refusing to extract (path traversal)"
        )
    if not parts or any(p in JUNK_NAMES or p.startswith("._") for p in parts):
        return None  # macOS resource forks and folder litter are not part of the dataset
    return PurePosixPath(*parts)


def _wanted(rel: PurePosixPath) -> bool:
    suffix = rel.suffix.lower()
    return (
        suffix in IMAGE_SUFFIXES
        or suffix in META_SUFFIXES
        or rel.name.upper().startswith(("LICEN", "README", "CITATION"))
    )


def _check_count(archive: Path, count: int, limit: int) -> None:
    if count > limit:
        raise SourceError(f"{archive}: {count} members, more than {limit}; refusing to extract")


def _check_ratio(archive: Path, what: str, size: int, packed: int, max_ratio: int) -> None:
    if size > max(RATIO_FLOOR, packed * max_ratio):
        raise SourceError(
            f"{archive}: {what!r} unpacks to {size} bytes from {packed}, more than "
            f"{max_ratio} times; refusing to extract (a zip bomb?)"
        )


def _check_declared(archive: Path, total: int, max_bytes: int, max_ratio: int, dest: Path) -> None:
    """The sizes the archive declares (exactly what zipfile/tarfile will let out of a member)
    against the cap, the archive's own size and the free space: before anything is written."""
    if total > max_bytes:
        raise SourceError(
            f"{archive}: unpacks to {total} bytes, more than the cap of {max_bytes};"
            " refusing to extract (raise max_extract_bytes if expected)"
        )
    _check_ratio(archive, "the archive", total, archive.stat().st_size, max_ratio)
    free = shutil.disk_usage(dest).free
    if total > free:
        raise SourceError(
            f"{archive}: unpacks to {total} bytes but only {free} are free in {dest.parent}; "
            "free some space or import into an --out folder on another disk"
        )


def _write_all(
    archive: Path,
    dest: Path,
    plan: list[tuple[PurePosixPath, int, Any]],
    open_member: Any,
    max_bytes: int,
) -> int:
    written = 0
    top = dest.resolve()
    for rel, _, member in plan:
        target = dest.joinpath(*rel.parts)
        try:
            # Belt and braces after the name check, and before any folder is made for it.
            if not target.resolve().is_relative_to(top):
                raise SourceError(
                    f"{archive}: member {rel.as_posix()!r} leaves the extraction "
                    "folder; refusing to extract (path traversal)"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            src: IO[bytes] | None = open_member(member)
            if src is None:
                continue
            with src, target.open("wb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise SourceError(
                            f"{archive}: unpacks to more than the cap of "
                            f"{max_bytes} bytes; refusing to extract"
                        )
                    out.write(chunk)
        except SourceError:
            raise
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
            if is_disk_full(exc):  # filled by someone else since the check of free space
                raise DiskFullError(dest.parent) from None
            raise SourceError(f"{archive}: cannot extract {rel.as_posix()!r} ({exc})") from None
    return written


# --- downloads ------------------------------------------------------------------------------


def _download(url: str, staging: Path, session: PoliteSession, about: _About, spdx: str) -> Path:
    """The archive behind `url` in staging/downloads/ (a Zenodo record URL names its archive)."""
    parts = urlsplit(url)
    record = _ZENODO_RECORD.match(parts.path)
    if record:
        url = _zenodo_archive(
            f"{parts.scheme}://{parts.netloc}/api/records/{record.group(1)}", session, about, spdx
        )
    elif (parts.hostname or "").endswith("huggingface.co") and "/resolve/" not in parts.path:
        raise AcnedataError(
            f"{url}: a Hugging Face repository page cannot be imported directly; give a file URL "
            "(https://huggingface.co/datasets/ORG/NAME/resolve/main/FILE.zip) or download the "
            "repository (huggingface-cli download ORG/NAME --repo-type dataset --local-dir DIR) "
            "and import DIR"
        )
    target = staging / "downloads" / _file_name(url)
    if target.is_file():
        return target  # fetched by an earlier run (written atomically, so complete)
    result = session.fetch(url, max_bytes=MAX_DOWNLOAD_BYTES)
    if not result.ok or result.content is None:
        raise SourceError(f"{redact(url)}: download failed ({result.reason or 'no content'})")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(result.content)
            fh.flush()
            os.fsync(fh.fileno())
        if not (zipfile.is_zipfile(tmp) or tarfile.is_tarfile(tmp)):
            got = result.content_type or "an unknown type"
            raise SourceError(
                f"{redact(url)}: not a zip or tar archive (got {got}); give the "
                "URL of the archive file itself"
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _zenodo_archive(api_url: str, session: PoliteSession, about: _About, spdx: str) -> str:
    """The download URL of a record's one archive; fills title, author, page and citation."""
    data, _ = session.get_json(api_url)
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise SourceError(f"{api_url}: not a Zenodo record (no files list)")
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    recorded = normalise_fields(data, source="zenodo")
    if recorded not in (NOASSERTION, spdx):
        raise AcnedataError(
            f"{api_url}: the record's licence is {recorded} but --licence says "
            f"{spdx}; pass --licence {recorded}"
        )
    files = [f for f in data["files"] if isinstance(f, dict)]
    archives = [f for f in files if str(f.get("key", "")).lower().endswith(ARCHIVE_SUFFIXES)]
    if len(archives) != 1:
        keys = ", ".join(str(f.get("key")) for f in (archives or files)) or "none"
        what = "several archives" if archives else "no zip or tar archive"
        raise AcnedataError(
            f"{api_url}: the record has {what} ({keys}); pass the URL of one archive file instead"
        )
    link = (archives[0].get("links") or {}).get("self") or archives[0].get("url")
    if not link:
        raise SourceError(f"{api_url}: file {archives[0].get('key')!r} has no download link")
    creators = [
        str(c.get("name"))
        for c in meta.get("creators") or []
        if isinstance(c, dict) and c.get("name")
    ]
    about.title = about.title or (str(meta["title"]) if meta.get("title") else None)
    about.author = about.author or ("; ".join(creators) or None)
    about.page_url = about.page_url or (data.get("links") or {}).get("self_html")
    if not about.citation and about.title:
        about.citation = _zenodo_citation(creators, about.title, data, meta)
    return str(link)


def _zenodo_citation(
    creators: list[str], title: str, record: dict[str, Any], meta: dict[str, Any]
) -> str:
    """'Doe, Jane (2024). Title. Zenodo. https://doi.org/…', the form Zenodo's own export uses."""
    year = str(meta.get("publication_date") or "")[:4]
    doi = record.get("doi") or meta.get("doi")
    parts = []
    if creators:
        parts.append("; ".join(creators) + (f" ({year})." if year else "."))
    parts += [f"{title.rstrip('.')}.", "Zenodo."]
    if doi:
        parts.append(f"https://doi.org/{doi}")
    return " ".join(parts)


def _file_name(url: str) -> str:
    """A local name for a download: Zenodo's .../files/<key>/content names the key."""
    segments = [unquote(s) for s in urlsplit(url).path.split("/") if s]
    if segments and segments[-1] == "content" and len(segments) > 1:
        segments.pop()
    name = re.sub(r"[^\w.-]+", "_", segments[-1] if segments else "") or "download"
    return name.lstrip(".") or "download"


# --- small helpers --------------------------------------------------------------------------


def _stem(name: str) -> str:
    low = name.lower()
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.strip().lower()).strip("-_") or "imported"


def _refuse_other_catalog(out_dir: Path, spec: DatasetSpec) -> None:
    """One output folder holds one dataset: never mix an import into another run's catalog."""
    path = out_dir / CATALOG_NAME
    if not path.is_file():
        return
    with Catalog(path) as cat:
        previous = cat.get_meta("spec_sha256")
    if previous and previous != spec.sha256:
        raise AcnedataError(
            f"{out_dir}: already holds another dataset (its catalog was made "
            "from a different spec or import); use a new --out folder"
        )
