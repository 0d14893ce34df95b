"""Transfer learning over keras.applications: a backbone, its preprocessing, a new head."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import keras

from acnemodel.backbones import BACKBONES
from acnemodel.errors import ModelError

if TYPE_CHECKING:
    from collections.abc import Callable


@keras.saving.register_keras_serializable(package="acnemodel")
class CaffePreprocess(keras.layers.Layer):
    """ResNet50's preprocessing as a layer: RGB → BGR, minus ImageNet's channel means (0-255).

    A layer, not a Lambda, so model.keras loads without unsafe deserialisation.
    """

    MEANS = (103.939, 116.779, 123.68)

    def call(self, x: Any) -> Any:
        return x[..., ::-1] - keras.ops.convert_to_tensor(self.MEANS, dtype=x.dtype)


def make_backbone(name: str, input_shape: tuple[int, int, int], weights: str | None) -> Any:
    """keras.applications' network without its top, global-average pooled."""
    constructor: Callable[..., Any] = getattr(keras.applications, BACKBONES[name][0])
    kwargs: dict[str, Any] = {}
    if name == "MobileNetV3Small":
        kwargs["include_preprocessing"] = True
    try:
        with warnings.catch_warnings():
            # a foreign weights file makes Keras warn once per layer before it fails; the
            # user gets the failure, in one line, below
            warnings.simplefilter("ignore", UserWarning)
            return constructor(
                include_top=False, weights=weights, input_shape=input_shape, pooling="avg", **kwargs
            )
    except ValueError as exc:
        # a weights file of another network, or an input the backbone refuses
        raise ModelError(f"backbone {name}: {str(exc).splitlines()[0]}") from None


def build_transfer(
    name: str, weights: str | None, input_shape: tuple[int, int, int], num_classes: int
) -> tuple[keras.Model, Any]:
    """[0, 1] images → the backbone's own preprocessing → backbone → dropout → softmax head."""
    from keras import layers

    backbone = make_backbone(name, input_shape, weights)
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(255.0)(inputs)  # acnemodel feeds [0, 1]; the backbones expect 0-255
    if BACKBONES[name][1] == "caffe":
        x = CaffePreprocess()(x)
    # training=False keeps batch norm in inference mode while fine-tuning: with a few thousand
    # images, updating ImageNet's batch statistics wrecks the pretrained features
    x = backbone(x, training=False)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=f"transfer-{name}"), backbone
