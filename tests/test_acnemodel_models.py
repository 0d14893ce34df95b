"""acnemodel models: every registered model builds with the right shapes and layers."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from manifest_factory import make_manifest
from typer.testing import CliRunner

from acnemodel import models
from acnemodel.cli import app
from acnemodel.errors import ModelError

# Keras 3.15 itself trips NumPy 2's copy-keyword deprecation on every fit; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def layer_names(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("name", ["paper", "kecnn", "kevgg", "resnet"])
@pytest.mark.parametrize("num_classes", [3, 4])
def test_each_model_builds_with_the_right_shapes(name: str, num_classes: int) -> None:
    size = models.get_spec(name).image_size
    model = models.make_model(name, (*size, 3), num_classes)
    assert tuple(model.input_shape) == (None, *size, 3)
    assert tuple(model.output_shape) == (None, num_classes)
    probs = model.predict(np.random.default_rng(0).random((2, *size, 3), np.float32), verbose=0)
    assert probs.shape == (2, num_classes)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)  # softmax head


def test_default_input_sizes() -> None:
    assert {n: models.get_spec(n).image_size for n in models.model_names()} == {
        "paper": (32, 32),
        "kecnn": (32, 32),
        "kevgg": (32, 32),
        "resnet": (64, 64),
        "strong": (96, 96),
        "kmeans": (96, 96),
    }


def test_paper_model_follows_the_papers_list() -> None:
    model = models.make_model("paper", (32, 32, 3), 4)
    assert layer_names(model) == [
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Conv2D",
        "MaxPooling2D",
        "Dense",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dense",
    ]
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 32, 64]  # the documented, fixed widths
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert convs[0].activation.__name__ == "linear"  # the paper lists no activation for it
    assert [c.activation.__name__ for c in convs[1:]] == ["relu", "relu"]
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [64, 128, 4]
    assert [d.activation.__name__ for d in dense] == ["relu", "relu", "softmax"]
    pools = [layer for layer in model.layers if type(layer).__name__ == "MaxPooling2D"]
    assert all(p.pool_size == (2, 2) for p in pools)
    assert model.count_params() == 164_516  # fixed widths: a change here is a new model


def test_kecnn_is_the_keras_cifar10_example() -> None:
    model = models.make_model("kecnn", (32, 32, 3), 10)
    assert layer_names(model) == [
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [(c.filters, c.padding) for c in convs] == [
        (32, "same"),
        (32, "valid"),
        (64, "same"),
        (64, "valid"),
    ]
    rates = [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"]
    assert rates == [0.25, 0.25, 0.5]
    assert model.count_params() == 1_250_858  # the figure cifar10_cnn.py's summary prints


def test_kevgg_is_the_guides_vgg_like_convnet() -> None:
    model = models.make_model("kevgg", (32, 32, 3), 10)
    assert layer_names(model) == [
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [(c.filters, c.padding) for c in convs] == [(32, "valid")] * 2 + [(64, "valid")] * 2
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [256, 10]


def test_resnet_has_skip_connections() -> None:
    model = models.make_model("resnet", (64, 64, 3), 4)
    names = layer_names(model)
    assert names.count("Add") == 3 and "GlobalAveragePooling2D" in names


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'alexnet'.*paper, kecnn, kevgg"):
        models.make_model("alexnet", (32, 32, 3), 3)


def test_adding_a_model_is_one_function() -> None:
    @models.register("tiny", (8, 8), "a test model")
    def tiny(input_shape, num_classes):
        import keras

        return keras.Sequential(
            [
                keras.Input(input_shape),
                keras.layers.Flatten(),
                keras.layers.Dense(num_classes, activation="softmax"),
            ]
        )

    try:
        assert "tiny" in models.model_names()
        assert models.make_model("tiny", (8, 8, 3), 2).output_shape == (None, 2)
    finally:
        del models.REGISTRY["tiny"]


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory: pytest.TempPathFactory):
    return make_manifest(tmp_path_factory.mktemp("tiny"), clusters_per_class=2, size=16)


@pytest.mark.parametrize(("model", "says"), [("kmeans", "at least 8×8"), ("paper", "4×4")])
def test_an_image_size_too_small_for_the_model_is_one_line(tiny_manifest, tmp_path, model, says):
    result = CliRunner().invoke(
        app,
        ["train", str(tiny_manifest), "--out", str(tmp_path / "r"), "--model", model,
         "--image-size", "4", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "--image-size" in lines[0]
