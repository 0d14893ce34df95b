"""The feature store: region features kept by image hash, read back by the content stage."""

from __future__ import annotations

import contextlib

import numpy as np
from test_content_groups import imported, mosaic, photo

from acnedata.catalog import Catalog
from acnedata.dedup import feature_store
from acnedata.dedup.content import GROUP, content_stage, scan_image
from acnedata.dedup.keypoints import DEFAULT_REGION_CONFIG


def test_features_and_mosaic_seams_read_back_as_they_were_found(tmp_path):
    folder = feature_store.store_dir(tmp_path, DEFAULT_REGION_CONFIG)
    tiled = mosaic([photo(k) for k in range(4)])
    for sha, image in (("a" * 64, photo(9)), ("b" * 64, tiled)):
        found = scan_image(image, DEFAULT_REGION_CONFIG)
        feature_store.save(folder, sha, found)
        mosaic_back, feats_back = feature_store.load(folder, sha)
        assert mosaic_back == found[0]
        assert feats_back.size == found[1].size
        for name in ("points", "descriptors", "mirror_points", "mirror_descriptors", "thumb"):
            want, got = getattr(found[1], name), getattr(feats_back, name)
            assert got.dtype == want.dtype and np.array_equal(got, want), name
    assert feature_store.load(folder, "b" * 64)[0] is not None  # the mosaic's seams came back
    assert feature_store.load(folder, "c" * 64) is None
    assert feature_store.count(folder) == 2


def test_other_settings_keep_their_features_apart(tmp_path):
    from dataclasses import replace

    other = replace(DEFAULT_REGION_CONFIG, features=DEFAULT_REGION_CONFIG.features + 1)
    assert feature_store.store_dir(tmp_path, other) != feature_store.store_dir(
        tmp_path, DEFAULT_REGION_CONFIG
    )


def test_the_content_stage_scans_each_image_once(tmp_path):
    items = imported(tmp_path)  # the import's content stage scanned every image
    out = tmp_path / "out"
    folder = feature_store.store_dir(out, DEFAULT_REGION_CONFIG)
    with contextlib.closing(Catalog.open(out)) as catalog:
        scanned = catalog.count("state = 'stored' AND duplicate_of IS NULL AND cluster IS NOT NULL")
        assert feature_store.count(folder) == scanned == 8  # six photos, a crop, a mosaic
        # Another policy is another content stage: every image's features come from the store.
        report = content_stage(catalog, out, policy=GROUP)
        assert (report.scanned, report.stored_features) == (8, 8)
        # A lost file is scanned again, and kept again.
        next(folder.glob("*/*.npz")).unlink()
        report = content_stage(catalog, out, policy="exclude")
        assert (report.scanned, report.stored_features) == (8, 7)
        assert feature_store.count(folder) == 8
    assert "m1234.jpg" not in items  # the stage's results are the import's
