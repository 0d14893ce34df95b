"""Local-folder source: one subfolder per class, optional sidecar JSON with licence fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acnedata.errors import SourceError
from acnedata.sources.base import Candidate, SearchContext, label_for, option_path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"}


def folder_candidates(
    root: Path,
    *,
    licence: str | None = None,
    author: str | None = None,
    page_url: str | None = None,
    label_map=None,
    citation: str | None = None,
    within: Path | None = None,
) -> Iterator[Candidate]:
    """Every image under root/<class>/..., labelled by its first-level folder.

    A sidecar `<image>.json` (or `<class>/licence.json` for the whole folder) may give
    licence, licence_url, author, page_url and title; it wins over the defaults passed in.
    Links are followed only while they stay inside `within` (default: root); one that leads
    out refuses the folder, as a labels CSV naming such a file does.
    """
    top = (within or root).resolve()
    if not root.is_dir():
        raise SourceError(f"{root}: folder not found; give a folder with one subfolder per class")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise SourceError(f"{root}: no class subfolders; put images in {root}/<class>/")
    for class_dir in classes:
        label = class_dir.name
        if label_map is not None:
            label = label_map(label)
            if label is None:
                continue  # a folder that names no class of the spec
        folder_meta = _sidecar(class_dir / "licence.json", top)
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            real = _inside(path, top)
            meta = {
                **folder_meta,
                **_sidecar(path.with_name(path.name + ".json"), top),
                **_sidecar(path.with_suffix(".json"), top),
            }
            raw = {"licence": meta.get("licence") or meta.get("license") or licence or ""}
            if meta.get("licence_url") or meta.get("license_url"):
                raw["licence_url"] = meta.get("licence_url") or meta.get("license_url")
            rel = path.relative_to(root).as_posix()
            yield Candidate(
                source="folder",
                source_id=rel,
                url=real.as_uri(),
                page_url=meta.get("page_url") or page_url,
                title=meta.get("title") or path.stem,
                author=meta.get("author") or author,
                attribution=meta.get("citation") or citation,
                licence_raw={k: v for k, v in raw.items() if v},
                label_hint=label,
                searched_class=label,
            )


def _inside(path: Path, top: Path) -> Path:
    """The file `path` really is; a link out of `top` (a photo elsewhere, /etc/passwd) refuses."""
    real = path.resolve()
    if not real.is_relative_to(top):
        raise SourceError(
            f"{path}: points outside {top}; paths must stay inside the dataset folder "
            "(copy the file in instead of linking to it)"
        )
    return real


def _sidecar(path: Path, top: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    path = _inside(path, top)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: sidecar is not valid JSON ({exc}); fix or remove it") from None
    return data if isinstance(data, dict) else {}


class FolderSource:
    """Reads `[sources.folder] path` (and optional licence/author defaults)."""

    name = "folder"

    def candidates(self, ctx: SearchContext) -> Iterator[Candidate]:
        opts = ctx.source.options
        yield from folder_candidates(
            option_path(ctx, "path"),
            licence=opts.get("licence") or opts.get("license"),
            author=opts.get("author"),
            page_url=opts.get("page_url"),
            citation=opts.get("citation"),
            label_map=lambda lab: label_for(ctx.spec, lab),
        )
