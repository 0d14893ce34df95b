"""The model registry: one function per architecture; adding a model is adding one function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acnemodel.errors import ModelError

if TYPE_CHECKING:
    import keras

Builder = Callable[[tuple[int, int, int], int], "keras.Model"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Builder
    image_size: tuple[int, int]  # (height, width) the model is meant to be trained at
    summary: str


REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, image_size: tuple[int, int], summary: str) -> Callable[[Builder], Builder]:
    """Decorator: add a builder `(input_shape, num_classes) -> keras.Model` to the registry."""

    def add(build: Builder) -> Builder:
        REGISTRY[name] = ModelSpec(name, build, image_size, summary)
        return build

    return add


def model_names() -> list[str]:
    return list(REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The registered model, or a one-line ModelError listing the known names."""
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def make_model(name: str, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Build a registered model (not compiled)."""
    return get_spec(name).build(tuple(input_shape), num_classes)


# Widths are not in the paper; these are ours and stay fixed: 32-32-64 filters (KECNN's
# progression), a per-position Dense(64) where the paper lists a Dense between two pools, a
# Dense(128) head. The first Conv has no activation because the paper's list gives it none
# (Keras's default is linear). 3×3 kernels, `same` padding, 2×2 pools, dropout 0.25.
@register("paper", (32, 32), "the paper's Sequential CNN (widths 32-32-64, Dense 64 and 128)")
def paper(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, padding="same"),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dense(64, activation="relu"),  # on a 4-D tensor: per position, as in the paper
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="paper",
    )


@register("kecnn", (32, 32), "Keras 2 examples/cifar10_cnn.py")
def kecnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="kecnn",
    )


@register("kevgg", (32, 32), "VGG-like convnet of Keras 2's Sequential-model guide")
def kevgg(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="kevgg",
    )


@register("resnet", (64, 64), "small residual CNN at 64×64 (beyond the paper)")
def resnet(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Stem, three residual stages (32, 64, 128 filters), global average pooling.

    Batch norm and the skip connections let it train well from scratch in 24 epochs; global
    pooling keeps the head small (no 1M-weight Dense), so it overfits a few thousand images less.
    """
    import keras
    from keras import layers

    def bn(x: keras.KerasTensor) -> keras.KerasTensor:
        # momentum 0.9, not Keras's 0.99: with ~60 steps an epoch the 0.99 moving averages
        # trail the weights, and test-time accuracy swings from epoch to epoch
        return layers.BatchNormalization(momentum=0.9)(x)

    def conv_bn(x: keras.KerasTensor, filters: int, strides: int = 1) -> keras.KerasTensor:
        return bn(layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x))

    def block(x: keras.KerasTensor, filters: int, strides: int) -> keras.KerasTensor:
        shortcut = x
        if strides != 1 or x.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
            shortcut = bn(shortcut)
        y = layers.ReLU()(conv_bn(x, filters, strides))
        y = conv_bn(y, filters)
        return layers.ReLU()(layers.Add()([shortcut, y]))

    inputs = keras.Input(input_shape)
    x = layers.ReLU()(conv_bn(inputs, 32))
    x = layers.MaxPooling2D(2)(x)
    x = block(x, 32, 1)
    x = block(x, 64, 2)
    x = block(x, 128, 2)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="resnet")
