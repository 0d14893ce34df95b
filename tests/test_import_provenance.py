"""`acnedata import` keeps provenance: group keys, the dataset's split, its other columns."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from imagefactory import make_image
from typer.testing import CliRunner

from acnedata.cli import app
from acnedata.errors import ManifestError
from acnedata.manifest import load_manifest, validate
from acnemodel import split
from acnemodel.errors import LeakError

runner = CliRunner()


def rf_name(upload: str, variant: int) -> str:
    """A Roboflow export file name: <upload>_jpg.rf.<32 hex>.jpg."""
    digest = hashlib.md5(f"{upload}/{variant}".encode()).hexdigest()
    return f"{upload}_jpg.rf.{digest}.jpg"


def write_images(folder: Path, names: list[str], start: int = 0) -> None:
    """A distinct real image per name (JPEG or PNG by suffix)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names, start=start):
        make_image(k, size=(64, 64), seed=500 + k).save(folder / name)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def import_cli(*args: str) -> object:
    # not -q: the summary's notes are read
    return runner.invoke(app, ["import", *args, "--licence", "CC-BY-4.0"])


def items_by_name(out: Path) -> dict[str, dict]:
    return {Path(i["id"].split(":", 1)[1]).name: i for i in load_manifest(out).items}


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def roboflow_dataset(root: Path, uploads: int, variants: int = 3, **columns: list[str]) -> Path:
    """Roboflow-named images (`variants` per upload, two labels) and labels.csv with `columns`."""
    names = [rf_name(f"photo-{u}-", v) for u in range(uploads) for v in range(variants)]
    write_images(root / "images", names)
    header = ["file", "label", *columns]
    rows = [
        [f"images/{n}", "pustular" if k // variants % 2 else "papular"]
        + [values[k] for values in columns.values()]
        for k, n in enumerate(names)
    ]
    return write_csv(root / "labels.csv", header, rows)


def upload(item_id: str) -> str:
    return Path(item_id).name.split("_jpg.rf.")[0]


def test_roboflow_names_are_grouped_by_upload_by_default(tmp_path):
    csv_path = roboflow_dataset(tmp_path / "rf", uploads=4)
    result = import_cli(str(csv_path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "12 files named as Roboflow exports: grouped by their 4 uploads" in result.output
    items = load_manifest(tmp_path / "out").items
    assert len(items) == 12 and len({i["cluster"] for i in items}) == 12  # no two alike
    group_of_upload: dict[str, set[str]] = {}
    for item in items:
        group_of_upload.setdefault(upload(item["id"]), set()).add(item["group"])
    assert all(len(g) == 1 for g in group_of_upload.values())  # one group per upload
    assert len(set().union(*group_of_upload.values())) == 4  # and four of them


def test_group_col_and_extra_columns(tmp_path):
    root = tmp_path / "data"
    names = [f"{k}.png" for k in range(6)]
    write_images(root, names)
    csv_path = write_csv(
        root / "labels.csv",
        ["file", "label", "Patient", "author", "site", "roboflow_split"],
        [
            ["0.png", "papular", "p1", "Ann", "cheek", "train"],
            ["1.png", "papular", "p1", "", "chin", "test"],
            ["2.png", "papular", "p2", "", "cheek", "train"],
            ["3.png", "pustular", "p2", "", "forehead", "valid"],
            ["4.png", "pustular", "", "", "nose", "train"],
            ["5.png", "pustular", "p3", "", "", "test"],
        ],
    )
    out = tmp_path / "out"
    result = import_cli(str(csv_path), "--out", str(out), "--group-col", "patient")
    assert result.exit_code == 0, result.output
    items = items_by_name(out)
    group = {name: i["group"] for name, i in items.items()}
    assert group["0.png"] == group["1.png"] != group["2.png"] == group["3.png"]
    assert len(set(group.values())) == 4  # p1, p2, p3 and the item without a patient
    # the other columns, as written (roboflow_split is not a split: it stays in extra)
    assert items["3.png"]["extra"] == {"site": "forehead", "roboflow_split": "valid"}
    assert items["5.png"]["extra"] == {"site": "", "roboflow_split": "test"}
    assert all("split" not in i for i in items.values())
    assert items["0.png"]["licence"]["author"] == "Ann"  # read into the item, not into extra
    # schema 1.1 and both copies of the schema accept it
    data = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert data["schema_version"] == "1.1"


def test_group_from_regex_takes_the_first_group_or_the_whole_match(tmp_path):
    root = tmp_path / "data"
    names = ["pt01_a.png", "pt01_b.png", "pt02_a.png", "pt02_b.png", "other.png"]
    write_images(root, names)
    rows = [[n, "papular" if k < 3 else "pustular"] for k, n in enumerate(names)]
    csv_path = write_csv(root / "labels.csv", ["file", "label"], rows)
    out = tmp_path / "out"
    result = import_cli(str(csv_path), "--out", str(out), "--group-from", r"^(pt\d+)_")
    assert result.exit_code == 0, result.output
    group = {n: i["group"] for n, i in items_by_name(out).items()}
    assert group["pt01_a.png"] == group["pt01_b.png"] != group["pt02_a.png"]
    assert group["pt02_a.png"] == group["pt02_b.png"]
    assert len(set(group.values())) == 3  # other.png does not match: a group of its own
    # no capture group: the whole match is the key
    out2 = tmp_path / "out2"
    result = import_cli(str(csv_path), "--out", str(out2), "--group-from", r"pt0\d")
    assert result.exit_code == 0, result.output
    assert {n: i["group"] for n, i in items_by_name(out2).items()} == group


def test_split_column_is_kept_and_acnemodel_honours_it(tmp_path):
    splits = ["training", "train", "train", "valid", "val", "dev", "TEST", "testing", ""]
    csv_path = roboflow_dataset(tmp_path / "rf", uploads=3, split=splits)
    out = tmp_path / "out"
    result = import_cli(str(csv_path), "--out", str(out))
    assert result.exit_code == 0, result.output
    items = load_manifest(out).items
    fixed = {i["id"]: i.get("split") for i in items}
    assert sorted(v or "-" for v in fixed.values()) == sorted(
        ["train"] * 3 + ["validation"] * 3 + ["test"] * 2 + ["-"]
    )
    parts = split.split_items(items, 0.3, 0)
    where = {i["id"]: name for name, part in parts.items() for i in part}
    for item_id, part in fixed.items():
        if part:
            assert where[item_id] == part
    assert len(parts["validation"]) == 3
    # the unfixed item follows its upload's fixed items (upload 2: both test)
    (free,) = [k for k, v in fixed.items() if not v]
    assert where[free] == "test"
    split.refuse_leaks(parts, "m")  # the dataset's own split keeps uploads apart: no refusal


def test_split_col_names_another_column_and_rejects_a_value_it_cannot_read(tmp_path):
    names = [f"{k}.png" for k in range(4)]
    write_images(tmp_path / "d", names)
    rows = [[n, "papular" if k % 2 else "pustular", s] for k, (n, s) in
            enumerate(zip(names, ["train", "valid", "test", "train"], strict=True))]  # fmt: skip
    csv_path = write_csv(tmp_path / "d" / "labels.csv", ["file", "label", "roboflow_split"], rows)
    out = tmp_path / "out"
    result = import_cli(str(csv_path), "--out", str(out), "--split-col", "roboflow_split")
    assert result.exit_code == 0, result.output
    items = items_by_name(out)
    assert [items[n].get("split") for n in names] == ["train", "validation", "test", "train"]
    assert all("extra" not in i for i in items.values())  # no column left over
    rows[2][2] = "holdout"
    write_csv(csv_path, ["file", "label", "roboflow_split"], rows)
    line = one_line_error(
        import_cli(str(csv_path), "--out", str(tmp_path / "o2"), "--split-col", "roboflow_split")
    )
    assert "line 4" in line and "'holdout'" in line and "train, validation or test" in line


def test_bad_regex_and_missing_columns_are_one_line_errors(tmp_path):
    names = ["0.png", "1.png"]
    write_images(tmp_path / "d", names)
    csv_path = write_csv(
        tmp_path / "d" / "labels.csv",
        ["file", "label", "Site"],
        [[n, "papular", "x"] for n in names],
    )
    out = str(tmp_path / "out")
    line = one_line_error(import_cli(str(csv_path), "--out", out, "--group-from", "(pt\\d+"))
    assert "--group-from '(pt\\\\d+'" in line and "not a valid regular expression" in line
    line = one_line_error(import_cli(str(csv_path), "--out", out, "--group-col", "patient"))
    assert "--group-col 'patient': no such column" in line and "file, label, Site" in line
    line = one_line_error(import_cli(str(csv_path), "--out", out, "--split-col", "fold"))
    assert "--split-col 'fold': no such column" in line and "file, label, Site" in line
    assert not (tmp_path / "out" / "manifest.json").exists()
    # the same through a real process: one line on stderr, exit status 1
    proc = subprocess.run(
        [sys.executable, "-m", "acnedata", "import", str(csv_path), "--out", out,
         "--licence", "CC0-1.0", "--group-from", "a[b"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "--group-from 'a[b'" in proc.stderr


def test_split_folders_give_their_items_a_split(tmp_path):
    root = tmp_path / "ds"
    for k, (part, klass) in enumerate(
        [("train", "papular"), ("train", "pustular"), ("valid", "papular"), ("test", "pustular")]
    ):
        write_images(root / part / klass, [f"{part}-{k}.png"], start=k)
    out = tmp_path / "out"
    result = import_cli(str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    where = {n: i.get("split") for n, i in items_by_name(out).items()}
    assert where == {
        "train-0.png": "train",
        "train-1.png": "train",
        "valid-2.png": "validation",
        "test-3.png": "test",
    }


def test_schema_1_1_requires_group_and_types_the_new_fields(tmp_path):
    csv_path = roboflow_dataset(tmp_path / "rf", uploads=2, site=["cheek"] * 6)
    out = tmp_path / "out"
    assert import_cli(str(csv_path), "--out", str(out)).exit_code == 0
    data = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    validate(data)
    assert data["schema_version"] == "1.1"
    assert all(
        i["group"].startswith("g") and i["extra"] == {"site": "cheek"} for i in data["items"]
    )

    def broken(change) -> str:
        copy_ = copy.deepcopy(data)
        change(copy_["items"][0])
        with pytest.raises(ManifestError) as exc:
            validate(copy_)
        return str(exc.value)

    assert "'group' is a required property" in broken(lambda i: i.pop("group"))
    assert "items/0/extra/site" in broken(lambda i: i["extra"].update(site=3))
    assert "items/0/split" in broken(lambda i: i.update(split="holdout"))
    # a 1.0 manifest (written before groups) still loads without them; acnemodel uses clusters
    old = copy.deepcopy(data)
    old["schema_version"] = "1.0"
    for item in old["items"]:
        del item["group"], item["extra"]
    validate(old)
    keys = split.group_keys(old["items"])
    assert all(keys[i["id"]] == i["cluster"] for i in old["items"])


def test_grouped_split_never_puts_one_group_on_both_sides(tmp_path):
    csv_path = roboflow_dataset(tmp_path / "rf", uploads=12, variants=3)
    out = tmp_path / "out"
    assert import_cli(str(csv_path), "--out", str(out)).exit_code == 0
    items = load_manifest(out).items
    assert len({i["cluster"] for i in items}) == 36  # every variant is a cluster of its own
    for seed in range(6):
        parts = split.split_items(items, 0.3, seed)
        assert split.spanning_groups(parts) == {}
        assert split.leaked_test_items(parts) == 0
        side = {}
        for name, part in parts.items():
            for item in part:
                assert side.setdefault(upload(item["id"]), name) == name  # one side per upload
        assert 0.2 <= len(parts["test"]) / len(items) <= 0.4


def test_refusal_names_the_group_and_an_item_on_each_side(tmp_path):
    splits = ["train", "test", "train"] + ["train"] * 3 + ["test"] * 3 + ["train"] * 3
    csv_path = roboflow_dataset(tmp_path / "rf", uploads=4, split=splits)
    out = tmp_path / "out"
    result = import_cli(str(csv_path), "--out", str(out))
    assert result.exit_code == 0, result.output
    items = {Path(i["id"]).name: i for i in load_manifest(out).items}
    first, second = rf_name("photo-0-", 0), rf_name("photo-0-", 1)
    # the import already says so, naming the group and an item on each side
    assert (
        f"split conflict: 1 group has items in more than one of the dataset's own splits (group "
        f"{items[first]['group']}: {items[second]['id']} in test, {items[first]['id']} in train)"
    ) in result.output
    assert items[first]["cluster"] != items[second]["cluster"]  # only the group joins them
    parts = split.split_items(list(items.values()), 0.3, 0)
    assert split.leaked_test_items(parts) == 1
    with pytest.raises(LeakError) as exc:
        split.refuse_leaks(parts, "m.json")
    text = str(exc.value)
    assert f"group {items[first]['group']!r} has 2 item(s) in train" in text
    assert items[first]["id"] in text and items[second]["id"] in text


def test_a_split_column_of_other_values_stays_in_extra_and_options_that_cannot_apply(tmp_path):
    names = ["0.png", "1.png"]
    write_images(tmp_path / "d", names)
    csv_path = write_csv(
        tmp_path / "d" / "labels.csv",
        ["file", "label", "split"],
        [["0.png", "papular", "fold-1"], ["1.png", "pustular", "fold-2"]],
    )
    out = tmp_path / "out"
    result = import_cli(str(csv_path), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "column 'split' holds 'fold-1', which is not a split name; kept in extra" in (
        result.output
    )
    items = items_by_name(out)
    assert items["1.png"]["extra"] == {"split": "fold-2"} and "split" not in items["1.png"]
    both = import_cli(str(csv_path), "--out", str(out), "--group-col", "split", "--group-from", "x")
    assert "--group-col and --group-from both given" in one_line_error(both)
    folder = tmp_path / "f"
    write_images(folder / "papular", ["a.png"])
    line = one_line_error(import_cli(str(folder), "--out", str(tmp_path / "o"), "--split-col", "s"))
    assert "--split-col s: needs a labels CSV" in line
