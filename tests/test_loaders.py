"""Loading outside TensorFlow: Manifest as a collection, numpy arrays, a torch Dataset."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from export_fixture import imported_dataset
from PIL import Image

import acnedata
import acnemodel
from acnedata.errors import AcnedataError
from acnedata.loaders import numpy_arrays, torch_dataset
from acnedata.manifest import load_manifest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return imported_dataset(tmp_path_factory.mktemp("loaders"))


def test_manifest_is_a_small_collection(dataset):
    m = load_manifest(dataset)
    assert len(m) == 12
    assert [i["id"] for i in m] == [i["id"] for i in m.items]
    assert len(m.filter(label="papular")) == 4
    assert {i["label"] for i in m.filter(label=["papular", "pustular"])} == {"papular", "pustular"}
    assert len(m.filter(split="train")) == 6
    assert len(m.filter(split="test", label="comedonal")) == 1
    cc0 = m.filter(licence="CC0-1.0")
    assert len(cc0) == 4 and all(i["licence"]["spdx"] == "CC0-1.0" for i in cc0)
    assert len(m.filter(licence="CC-BY-*")) == 8
    assert len(m) == 12  # filter leaves the original alone
    paths = m.filter(split="validation").paths()
    assert len(paths) == 3 and all(p.is_absolute() and p.is_file() for p in paths)


def test_to_pandas(dataset):
    pytest.importorskip("pandas")
    frame = load_manifest(dataset).to_pandas()
    assert len(frame) == 12
    assert frame.groupby("split").size().to_dict() == {"test": 3, "train": 6, "validation": 3}
    assert frame.loc[frame["licence"] == "CC0-1.0", "author"].unique().tolist() == ["Clinic B"]
    assert all(Path(p).is_file() for p in frame["path"])


def test_numpy_arrays_native_size_are_the_decoded_pixels(dataset):
    m = load_manifest(dataset)
    x, y = numpy_arrays(m, (48, 40), split="test")
    test_items = m.filter(split="test").items
    assert x.shape == (3, 40, 48, 3) and x.dtype == np.float32
    assert [m.class_names[k] for k in y] == [i["label"] for i in test_items]
    for k, item in enumerate(test_items):
        with Image.open(m.file_path(item)) as im:
            decoded = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
        assert np.array_equal(x[k], decoded)


def test_numpy_arrays_resized_all_items(dataset):
    x, y = numpy_arrays(dataset, 16)
    assert x.shape == (12, 16, 16, 3)
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.std() > 0.05
    assert np.bincount(y).tolist() == [4, 4, 4]
    with pytest.raises(AcnedataError, match="positive pixel counts"):
        numpy_arrays(dataset, 0)


def test_torch_dataset(dataset):
    torch = pytest.importorskip("torch", reason="the torch extra is not installed")
    ds = torch_dataset(dataset, size=20, split="train")
    assert len(ds) == 6
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 3, 20, 20), (2, 3, 20, 20)]
    x, _ = numpy_arrays(dataset, 20, split="train")
    assert np.allclose(torch.cat([b[0] for b in batches]).numpy().transpose(0, 2, 3, 1), x)
    labels = torch.cat([b[1] for b in batches]).tolist()
    m = load_manifest(dataset).filter(split="train")
    assert [m.class_names[k] for k in labels] == [i["label"] for i in m]


def test_no_tensorflow_until_needed_and_dir_shows_public_names(dataset):
    script = textwrap.dedent(f"""
        import sys
        import acnedata, acnemodel
        from acnedata.loaders import numpy_arrays
        x, y = numpy_arrays({str(dataset)!r}, 8)
        acnedata.load_manifest({str(dataset)!r}).filter(split="train")
        assert "tensorflow" not in sys.modules, "tensorflow imported"
        assert "torch" not in sys.modules, "torch imported"
        print(len(y))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "12"
    public = {n for n in dir(acnedata) if not n.startswith("_")}
    assert {"load_manifest", "Manifest", "import_dataset", "verify", "numpy_arrays"} <= public
    assert {"Any", "importlib", "annotations"}.isdisjoint(public)
    assert {"load_dataset", "make_model", "AugmentConfig", "TrainConfig"} <= set(dir(acnemodel))
