"""Items whose content links cross a split are left out: mosaics first, as few as possible."""

from __future__ import annotations

from acnedata.audit import Leak
from acnemodel.leaks import leave_out_leaking_mosaics
from acnemodel.straddle import cross_links, leave_out_straddlers


def item(item_id: str, links: tuple[str, ...] = (), mosaic: bool = False) -> dict:
    out: dict = {"id": item_id, "label": "a", "cluster": item_id, "group": item_id}
    if links:
        out["links"] = list(links)
    if mosaic:
        out["mosaic"] = "mosaic of 4 tiles (seams at x=50%, y=50%)"
    return out


def test_a_mosaic_showing_photos_on_both_sides_is_left_out_and_the_photos_stay():
    parts = {
        "train": [item("p1", ("m",)), item("p2", ("m", "n"))],
        "validation": [],
        "test": [item("p3", ("m",)), item("m", ("p1", "p2", "p3"), mosaic=True),
                 item("n", ("p2",), mosaic=True)],
    }  # fmt: skip
    assert cross_links(parts) == [("m", "p1"), ("m", "p2"), ("n", "p2")]
    kept, out = leave_out_straddlers(parts)
    assert [i["id"] for i in out] == ["m", "n"]
    assert {name: [i["id"] for i in part] for name, part in kept.items()} == {
        "train": ["p1", "p2"],
        "validation": [],
        "test": ["p3"],
    }
    assert cross_links(kept) == []


def test_two_mosaics_of_one_photo_on_two_sides_lose_only_the_one_on_more_crossings():
    # a and b show one photo; b also shows c, which sits in train with a
    parts = {
        "train": [item("a", ("b",), mosaic=True), item("c", ("b",))],
        "test": [item("b", ("a", "c"), mosaic=True)],
    }
    kept, out = leave_out_straddlers(parts)
    assert [i["id"] for i in out] == ["b"]
    assert [i["id"] for i in kept["train"]] == ["a", "c"]


def test_a_mosaic_on_the_side_of_all_it_shows_stays():
    parts = {
        "train": [item("p1", ("m",)), item("m", ("p1", "p2"), mosaic=True), item("p2", ("m",))],
        "test": [item("p3")],
    }
    kept, out = leave_out_straddlers(parts)
    assert out == [] and [i["id"] for i in kept["train"]] == ["p1", "m", "p2"]


def test_an_audited_leak_through_a_mosaic_leaves_the_mosaic_out_and_one_between_photos_stays():
    parts = {
        "train": [item("p1"), item("m1", mosaic=True)],
        "validation": [],
        "test": [item("p2"), item("m2", mosaic=True), item("p3")],
    }
    leaks = [
        Leak("m2", "p1", "contains", 0.25, 0.9, 40),  # a test mosaic holds a train photo
        Leak("p2", "m1", "crop", 0.9, 0.25, 30),  # a train mosaic holds a test photo
        Leak("p3", "p1", "overlap", 0.5, 0.5, 20),  # two photos: the refusal must name it
    ]
    kept, left = leave_out_leaking_mosaics(parts, leaks)
    assert {name: [i["id"] for i in part] for name, part in kept.items()} == {
        "train": ["p1"],
        "validation": [],
        "test": ["p2", "p3"],
    }
    assert left == [leaks[2]]
    assert "links" not in parts["test"][1]  # the manifest's items are not changed
