"""A real imported dataset for the export tests: Pillow images, groups, splits, mixed licences."""

from __future__ import annotations

from pathlib import Path

from imagefactory import make_image
from manifest_factory import edit_manifest

from acnedata.importer import import_dataset
from acnedata.manifest import load_manifest

CLASSES = ("comedonal", "papular", "pustular")
SPLITS = ("train", "train", "validation", "test")


def imported_dataset(root: Path, per_class: int = 4) -> Path:
    """Import a labels CSV of distinct images through acnedata's pipeline; return its folder.

    Items come in pairs sharing a patient (one group), with the dataset's own split, titles
    holding commas and quotes, and after the import a third of them relicensed CC0-1.0 by
    another author, so every export has more than one licence to keep.
    """
    src = root / "src"
    src.mkdir(parents=True)
    rows = ["file,label,patient,split,title"]
    n = 0
    for c, label in enumerate(CLASSES):
        for k in range(per_class):
            name = f"{label}_{k}.{'png' if k % 2 else 'jpg'}"
            make_image(n, size=(48, 40), seed=900 + n).save(src / name)
            split = SPLITS[k % len(SPLITS)]
            rows.append(f'{name},{label},p{c}-{k // 2},{split},"Photo {n}, ""{label}"""')
            n += 1
    (src / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = root / "ds"
    import_dataset(
        src / "labels.csv",
        out,
        licence="CC-BY-4.0",
        author="Clinic A",
        citation="Clinic A (2024). Acne photos.",
        page_url="https://example.invalid/acne",
        group_col="patient",
    )

    def relicense(data: dict) -> None:
        for k, item in enumerate(data["items"]):
            if k % 3 == 0:
                item["licence"].update(spdx="CC0-1.0", author="Clinic B", url=None)

    edit_manifest(out / "manifest.json", relicense)
    load_manifest(out)
    return out
