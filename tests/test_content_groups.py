"""Import under random names: crops and mosaics grouped by content, mosaics excluded or grouped,
and acnemodel's content leak audit refusing a split that no group protects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imagefactory import make_image
from PIL import Image
from typer.testing import CliRunner

from acnedata.cli import app
from acnedata.manifest import load_manifest

runner = CliRunner()
SIDE = 256


def photo(k: int) -> Image.Image:
    return make_image(k, size=(SIDE, SIDE), seed=900 + k)


def mosaic(tiles: list[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (SIDE, SIDE))
    half = SIDE // 2
    for k, tile in enumerate(tiles):
        out.paste(tile.resize((half, half)), ((k % 2) * half, (k // 2) * half))
    return out


def dataset(root: Path) -> dict[str, str]:
    """Six photos, a crop of photo 0, a mosaic of photos 1-4, under names that say nothing.
    Returns name → what it is."""
    photos = [photo(k) for k in range(6)]
    files = {f"p{k}.jpg": p for k, p in enumerate(photos)}
    files["c0.jpg"] = photos[0].crop((20, 30, 200, 220)).resize((SIDE, SIDE))
    files["m1234.jpg"] = mosaic(photos[1:5])
    (root / "images").mkdir(parents=True)
    rows = ["file,label"]
    for k, (name, im) in enumerate(sorted(files.items())):
        im.save(root / "images" / name, quality=92)
        rows.append(f"images/{name},{'ab'[k % 2]}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return {name: name for name in files}


def imported(tmp_path: Path, *options: str) -> dict[str, dict]:
    dataset(tmp_path / "src")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "import",
            str(tmp_path / "src" / "labels.csv"),
            "--out",
            str(out),
            "--licence",
            "CC-BY-4.0",
            "-q",
            *options,
        ],
    )
    assert result.exit_code == 0, result.output
    return {Path(i["id"]).name: i for i in load_manifest(out).items}


def test_a_crop_joins_its_photo_in_one_group_and_a_mosaic_is_excluded(tmp_path):
    items = imported(tmp_path)
    assert "m1234.jpg" not in items  # the default policy keeps mosaics out
    assert items["c0.jpg"]["group"] == items["p0.jpg"]["group"]
    assert items["c0.jpg"]["cluster"] != items["p0.jpg"]["cluster"]  # not interchangeable
    others = {items[f"p{k}.jpg"]["group"] for k in range(1, 6)}
    assert len(others) == 5 and items["p0.jpg"]["group"] not in others
    status = runner.invoke(app, ["status", str(tmp_path / "out")])
    assert "mosaics" in status.output and "1 excluded" in status.output, status.output
    shown = runner.invoke(app, ["status", str(tmp_path / "out"), "--show", "excluded"])
    line = shown.output.strip().splitlines()[-1]
    assert line.split("\t")[0].endswith("m1234.jpg")
    assert "mosaic of 4 tiles" in line and 'mosaics = "exclude"' in line


def test_the_group_policy_keeps_a_mosaic_with_every_photo_it_shows(tmp_path):
    items = imported(tmp_path, "--mosaics", "group")
    group = items["m1234.jpg"]["group"]
    assert {k for k in range(6) if items[f"p{k}.jpg"]["group"] == group} == {1, 2, 3, 4}


def test_status_says_which_uploads_only_mosaics_held(tmp_path):
    src = tmp_path / "src"
    dataset(src)
    # A group column: the mosaic is upload u9's only file; every other upload keeps a photo.
    lines = (src / "labels.csv").read_text().splitlines()
    uploads = {"c0.jpg": "u0", "m1234.jpg": "u9"}
    rows = [lines[0] + ",upload"] + [
        f"{line},{uploads.get(Path(line.split(',')[0]).name, Path(line.split(',')[0]).stem)}"
        for line in lines[1:]
    ]
    (src / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    args = ["import", str(src / "labels.csv"), "--out", str(out), "--licence", "CC-BY-4.0"]
    done = runner.invoke(app, [*args, "--group-col", "upload", "-q"])
    assert done.exit_code == 0, done.output
    status = runner.invoke(app, ["status", str(out), "--json"])
    mosaics = json.loads(status.output)["mosaics"]
    # p0..p5 and c0 (upload u0, as p0 is not) carry 7 keys, u9 the eighth
    assert mosaics == {
        "policy": "exclude",
        "found": 1,
        "excluded": 1,
        "group_keys": 8,
        "group_keys_only_in_mosaics": 1,
    }
    table = runner.invoke(app, ["status", str(out)]).output
    shown = " ".join(table.replace("│", " ").split())  # the detail column wraps in its box
    assert '[dedup] mosaics = "exclude"' in shown
    assert "1 of 8 group keys" in shown and "--mosaics follow keeps them" in shown, shown


def test_a_bad_mosaic_policy_is_one_line(tmp_path):
    dataset(tmp_path / "src")
    result = runner.invoke(
        app,
        [
            "import",
            str(tmp_path / "src" / "labels.csv"),
            "--out",
            str(tmp_path / "o"),
            "--licence",
            "CC-BY-4.0",
            "--mosaics",
            "keep",
        ],
    )
    assert result.exit_code == 1
    assert "mosaics" in result.output and "Traceback" not in result.output


def _tamper_groups(manifest: Path) -> None:
    """Give every item a group of its own, as a manifest from another tool (or an old one) would."""
    data = json.loads(manifest.read_text())
    for item in data["items"]:
        item["group"] = "g-" + item["id"].rsplit("/", 1)[-1]
        item["cluster"] = "c-" + item["id"].rsplit("/", 1)[-1]
    manifest.write_text(json.dumps(data))


@pytest.mark.slow
def test_acnemodel_refuses_a_split_where_test_shares_content_with_train(tmp_path):
    pytest.importorskip("tensorflow")
    from acnemodel.data import load_dataset
    from acnemodel.errors import LeakError

    imported(tmp_path)
    manifest = tmp_path / "out" / "manifest.json"
    _tamper_groups(manifest)
    # fixed splits put the crop in test and its photo in train: no group joins them any more
    data = json.loads(manifest.read_text())
    for item in data["items"]:
        name = item["id"].rsplit("/", 1)[-1]
        item["split"] = "test" if name in ("c0.jpg", "p5.jpg") else "train"
    manifest.write_text(json.dumps(data))
    with pytest.raises(LeakError) as refused:
        load_dataset(manifest, (32, 32))
    message = str(refused.value)
    assert "c0.jpg" in message and "p0.jpg" in message and "--allow-leaks" in message
    data = load_dataset(manifest, (32, 32), allow_leaks=True)
    assert data.info["leaked_test_items"] == 1
    assert [leak["relation"] for leak in data.info["content_leaks"]] == ["crop"]


def test_the_follow_policy_keeps_a_mosaic_apart_and_a_split_puts_it_with_its_photos(tmp_path):
    from acnemodel import split

    items = imported(tmp_path, "--mosaics", "follow")
    tiled = items["m1234.jpg"]
    shown = {items[f"p{k}.jpg"]["id"] for k in (1, 2, 3, 4)}
    assert "mosaic of 4 tiles" in tiled["mosaic"]
    assert set(tiled["links"]) == shown  # linked to each photo it shows, and to nothing else
    groups = [items[f"p{k}.jpg"]["group"] for k in range(6)]
    assert len(set(groups)) == 6 and tiled["group"] not in groups  # no group joined
    assert all(items[f"p{k}.jpg"]["links"] == [tiled["id"]] for k in (1, 2, 3, 4))
    assert "links" not in items["p0.jpg"] and "mosaic" not in items["p0.jpg"]

    # more photos of their own groups, so that the four shown sometimes all land in train
    others = [
        dict(items["p5.jpg"], id=f"x{k}", group=f"gx{k}", cluster=f"cx{k}", label="ab"[k % 2])
        for k in range(30)
    ]
    everything = [*items.values(), *others]
    placed = left_out = 0
    for seed in range(30):
        parts = split.split_items(everything, 0.3, seed)
        side = {i["id"]: name for name, part in parts.items() for i in part}
        if tiled["id"] in side:
            placed += 1
            assert {side[i] for i in shown} == {side[tiled["id"]]}
        else:
            left_out += 1  # the photos straddle, or they sit opposite the mosaic's group
            assert split.left_out(everything, parts) == [tiled]
        assert len(side) == len(everything) - (tiled["id"] not in side)  # only the mosaic goes
    assert placed and left_out  # both happen over 30 seeds; which seed does which is fixed

    status = runner.invoke(app, ["status", str(tmp_path / "out"), "--json"])
    assert json.loads(status.output)["mosaics"]["policy"] == "follow"


def test_the_honest_split_moves_a_test_group_that_shares_content_with_train(tmp_path):
    from acnemodel.leak_repair import repair_split
    from acnemodel.leaks import content_leaks

    imported(tmp_path)
    path = tmp_path / "out" / "manifest.json"
    _tamper_groups(path)  # no group joins the crop c0 to its photo p0 any more
    manifest = load_manifest(path)
    by_name = {i["id"].rsplit("/", 1)[-1]: i for i in manifest.items}
    in_test = ("c0.jpg", "p5.jpg")
    parts = {
        "train": [i for name, i in sorted(by_name.items()) if name not in in_test],
        "validation": [],
        "test": [by_name[name] for name in in_test],
    }
    leaks = content_leaks(manifest, parts)
    assert [(leak.test, leak.train) for leak in leaks] == [
        (by_name["c0.jpg"]["id"], by_name["p0.jpg"]["id"])
    ]
    repaired = repair_split(manifest, parts, leaks)
    assert repaired.moved_to_train == [by_name["c0.jpg"]["id"]]
    assert repaired.parts["test"] == [by_name["p5.jpg"]] and repaired.leaks == []
    assert content_leaks(manifest, repaired.parts) == []

    # A split the dataset fixed is not moved: the leak stays for the refusal to name
    fixed = {**parts, "test": [{**by_name["c0.jpg"], "split": "test"}, by_name["p5.jpg"]]}
    kept = repair_split(manifest, fixed, leaks)
    assert kept.moved_to_train == [] and kept.leaks == leaks
