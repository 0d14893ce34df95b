"""The transfer-learning backbones by name and the --weights choice, checked without TensorFlow."""

from __future__ import annotations

from pathlib import Path

from acnemodel.errors import ModelError

# name → (keras.applications constructor, preprocessing on 0-255 RGB, ImageNet weights size).
# Sizes are of the no-top weight files Keras downloads on first use (into ~/.keras/models).
BACKBONES: dict[str, tuple[str, str, str]] = {
    "EfficientNetB0": ("EfficientNetB0", "builtin", "16 MB"),
    "MobileNetV3Small": ("MobileNetV3Small", "builtin", "4 MB"),
    "ResNet50": ("ResNet50", "caffe", "94 MB"),
}
WEIGHTS_CHOICES = "imagenet, none, or a path to a .weights.h5 file of the backbone without its top"


def backbone_name(name: str) -> str:
    """The canonical spelling of a backbone name, any case; ModelError listing them otherwise."""
    for known in BACKBONES:
        if known.lower() == name.lower():
            return known
    raise ModelError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")


def check_weights(weights: str) -> str | None:
    """'imagenet', None for 'none', or an existing file's path; ModelError otherwise."""
    if weights == "imagenet":
        return "imagenet"
    if weights.lower() == "none":
        return None
    if not Path(weights).is_file():
        raise ModelError(f"--weights {weights}: no such file; give {WEIGHTS_CHOICES}")
    return str(weights)
