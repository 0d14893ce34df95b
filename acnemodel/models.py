"""The model registry: one function per architecture; adding a model is adding one function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acnemodel.errors import ModelError
from acnemodel.recipe import HONEST_PATIENCE, Recipe

if TYPE_CHECKING:
    import keras
    import numpy as np

Builder = Callable[[tuple[int, int, int], int], "keras.Model"]


# The honest protocol's default: the paper's Adam at 0.001, the epoch chosen on validation loss
# (the lowest loss is never an epoch that predicts only the prior while a better one exists).
HONEST = Recipe(patience=HONEST_PATIENCE, monitor="val_loss")
# kecnn and kevgg: why they sat on the majority class, and the fix (architecture untouched).
# Measured on the shared Roboflow set (bench/README.md): after ONE epoch of Adam at 0.001, 70-74%
# of the units of their large Dense layer (512 / 256 ReLUs fed by a 2,304-wide Flatten) and up to
# 45% of the last conv's channels never fire on any validation image, and the softmax output
# varies across images by ~0.01: the network answers the class prior whatever it sees. The first
# steps spend large gradients moving the zero-initialised output toward that prior, and Adam's
# 0.001 steps through the wide dense layer push most ReLUs negative for good. At 0.0001 (the Keras
# 2 example's own rate) 36-41% are dead after two epochs and no conv channel is. So: a smaller
# step (3e-4), the softmax bias started at the class log-priors (nothing left to rush toward),
# and inputs standardised per channel (pixels in [0, 1] have mean 0.55 and std 0.2: all-positive
# inputs put a quarter of the dense units at zero before training starts).
KE_RECIPE = Recipe(learning_rate=3e-4, patience=HONEST_PATIENCE, monitor="val_loss")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Builder
    image_size: tuple[int, int]  # (height, width) the model is meant to be trained at
    summary: str
    recipe: Recipe = HONEST  # how it trains under the honest protocol
    # honest protocol only; the architecture is untouched by either:
    standardize: bool = False  # feed per-channel standardised pixels (train's mean and std)
    prior_bias: bool = False  # start the softmax bias at the train class log-priors
    # fits parts of the model on the training pixels and labels before training (both protocols)
    prefit: Callable[[keras.Model, np.ndarray, np.ndarray, int], None] | None = None


REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str,
    image_size: tuple[int, int],
    summary: str,
    recipe: Recipe = HONEST,
    *,
    standardize: bool = False,
    prior_bias: bool = False,
    prefit: Callable[[keras.Model, np.ndarray, np.ndarray, int], None] | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator: add a builder `(input_shape, num_classes) -> keras.Model` to the registry."""

    def add(build: Builder) -> Builder:
        REGISTRY[name] = ModelSpec(
            name, build, image_size, summary, recipe, standardize, prior_bias, prefit
        )
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
    """Build a registered model (not compiled); an input its layers cannot shrink is one line."""
    spec = get_spec(name)
    try:
        return spec.build(tuple(input_shape), num_classes)
    except ValueError as error:  # Keras's shape inference: pools and valid convs past zero
        height, width = input_shape[:2]
        if (height, width) == tuple(spec.image_size):
            raise  # at its own size a failure is the builder's bug, not the user's --image-size
        own = "×".join(str(v) for v in spec.image_size)
        raise ModelError(
            f"{name} cannot be built for {height}×{width} inputs (its layers shrink them past "
            f"nothing); use a larger --image-size (its own is {own})"
        ) from error


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


@register(
    "kecnn",
    (32, 32),
    "Keras 2 examples/cifar10_cnn.py",
    KE_RECIPE,
    standardize=True,
    prior_bias=True,
)
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


@register(
    "kevgg",
    (32, 32),
    "VGG-like convnet of Keras 2's Sequential-model guide",
    KE_RECIPE,
    standardize=True,
    prior_bias=True,
)
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


# Settings judged by 5-fold grouped cross-validation on the shared Roboflow set (bench/cv.py,
# bench/README.md), never on a test split: a first variant (average pooling only, patience 10,
# 40 epochs) reached balanced accuracy 0.426 and 0.393 on its first two folds and was replaced by
# this one (average + max pooling, patience 12, 30 epochs). Only these two were compared.
STRONG_RECIPE = Recipe(
    learning_rate=2e-3,
    weight_decay=1e-4,
    schedule="cosine",
    warmup_epochs=2,
    label_smoothing=0.1,
    mixup=0.2,
    class_balance=True,
    patience=12,
    tta=True,
)


@register(
    "strong",
    (96, 96),
    "from-scratch ResNet-style net at 96×96 with its own recipe (see README)",
    STRONG_RECIPE,
    standardize=True,
)
def strong(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """A stride-2 stem and pool down to a quarter, then residual stages of 48, 96, 192 filters.

    Sized for a CPU: the early downsampling keeps it near 60M multiply-adds an image at 96×96,
    while 96 pixels keep lesions several pixels wide where 32 leaves them one or two. The head
    reads both the average and the maximum of the last features: the label is the most severe
    lesion type present anywhere (often in one tile of a 2×2 mosaic), and a maximum answers
    "is it anywhere" where an average dilutes one small cyst over the whole image.
    """
    import keras
    from keras import layers

    def conv_bn(x: keras.KerasTensor, filters: int, strides: int = 1) -> keras.KerasTensor:
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
        return layers.BatchNormalization(momentum=0.9)(x)

    def block(x: keras.KerasTensor, filters: int, strides: int) -> keras.KerasTensor:
        shortcut = x
        if strides != 1 or x.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
            shortcut = layers.BatchNormalization(momentum=0.9)(shortcut)
        y = layers.ReLU()(conv_bn(x, filters, strides))
        y = conv_bn(y, filters)
        return layers.ReLU()(layers.Add()([shortcut, y]))

    inputs = keras.Input(input_shape)
    x = layers.ReLU()(conv_bn(inputs, 32, strides=2))
    x = layers.MaxPooling2D(2)(x)
    x = block(x, 48, 1)
    x = block(x, 96, 2)
    x = block(x, 192, 2)
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="strong")


def _fit_patch_codes(model: keras.Model, x: np.ndarray, y: np.ndarray, seed: int) -> None:
    from acnemodel.patch_codes import fit_patch_codes

    fit_patch_codes(model, x, y, seed)


# The head starts at an exact class-balanced logistic regression on train's codes (prefit; its
# C, 0.001, is the only value tried, judged by the 5-fold grouped cross-validation in
# bench/README.md, never on a test split); the epochs then adjust it under augmentation at a
# small rate, the epoch chosen on validation. Trained by Adam alone instead (rates 3e-3 to
# 3e-4), the convex head wandered: validation balanced accuracy moved 0.39-0.47 from one epoch
# to the next. The L2 is that C in Keras's units, 1 / (2·C·n), for the shared set's n ≈ 1,450.
KMEANS_RECIPE = Recipe(
    learning_rate=1e-4,
    class_balance=True,
    patience=5,
    monitor="val_balanced_accuracy",
)


KMEANS_SIZE = (96, 96)


@register(
    "kmeans",
    KMEANS_SIZE,
    "single-layer k-means features (Coates et al. 2011) and a linear softmax",
    KMEANS_RECIPE,
    prefit=_fit_patch_codes,
)
def kmeans(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """256 k-means centroids of whitened 6×6 patches learnt from train without labels, each
    image coded by the triangle rule and pooled per quadrant and over the whole, then one
    softmax layer: the classic answer for a few thousand images with no pretrained network."""
    import keras
    from keras import layers

    from acnemodel.patch_codes import PATCH, STRIDE, PatchCodes

    if min(input_shape[:2]) < PATCH + STRIDE:  # two patch positions a side: one per quadrant
        raise ModelError(
            f"kmeans needs inputs of at least {PATCH + STRIDE}×{PATCH + STRIDE} pixels, not "
            f"{input_shape[0]}×{input_shape[1]}; use a larger --image-size (its own is "
            f"{KMEANS_SIZE[0]})"
        )
    inputs = keras.Input(input_shape)
    x = PatchCodes(name="patch_codes")(inputs)
    outputs = layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer="zeros",
        kernel_regularizer=keras.regularizers.L2(0.35),
    )(x)
    return keras.Model(inputs, outputs, name="kmeans")
