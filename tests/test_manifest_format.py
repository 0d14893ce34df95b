"""manifest.json on disk: indented, one line per item, and the same data once read back."""

from __future__ import annotations

import json

from acnedata.manifest import dumps


def test_items_are_one_line_each_and_the_data_round_trips():
    data = {
        "schema_version": "1.0",
        "name": "x",
        "classes": [{"name": "papular", "aliases": ["구진"]}],
        "items": [{"id": f"i{n}", "label": "papular", "source": {"title": "é"}} for n in range(3)],
    }
    text = dumps(data)
    assert json.loads(text) == data
    lines = [line.rstrip(",") for line in text.splitlines()]
    for n in range(3):
        assert f'    {{"id": "i{n}", "label": "papular", "source": {{"title": "é"}}}}' in lines
    assert '  "name": "x"' in lines  # the rest keeps its indentation
    assert text.endswith("  ]\n}\n")


def test_edge_shapes_stay_valid_json():
    for data in ({"items": []}, {"name": "x", "items": []}, {"items": [{}]}, {"name": "x"}, {}):
        assert json.loads(dumps(data)) == data
