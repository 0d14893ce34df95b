"""acnemodel: train, compare and predict Keras models from acnedata manifests."""

__version__ = "0.1.0"
