"""The Keras side of presence training: a sigmoid head to train, a severity head to predict."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from acnemodel.presence import read_off


@keras.saving.register_keras_serializable(package="acnemodel")
class SeverityHead(keras.layers.Layer):
    """Presence probabilities → class probabilities (presence.class_probs), inside the saved
    model, so `acnemodel predict` reads classes from it as from any other run."""

    def __init__(self, order: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.order = [int(c) for c in order]

    def call(self, p: Any) -> Any:
        return read_off(p, self.order, ops)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "order": self.order}


def sigmoid_head(model: keras.Model, present: np.ndarray) -> keras.Model:
    """The model with its softmax layer swapped for a sigmoid per class, the bias started at
    each class's presence rate in train (the log-prior start, for independent outputs)."""
    dense = keras.layers.Dense(present.shape[1], activation="sigmoid", name="presence")
    out = keras.Model(model.inputs, dense(model.layers[-1].input), name=model.name)
    rate = np.clip(present.mean(axis=0), 0.02, 0.98)
    dense.bias.assign(np.log(rate / (1 - rate)).astype(np.float32))
    return out


def with_severity(model: keras.Model, order: list[int]) -> keras.Model:
    """The trained presence model followed by its severity head: outputs class probabilities.
    Built on the model's own graph, not around the model, so what is saved carries no training
    set-up (the training metric is a closure no file could load)."""
    head = SeverityHead(order, name="severity")
    return keras.Model(model.inputs, head(model.outputs[0]), name=model.name)


def severity_accuracy(order: list[int]) -> Any:
    """A training metric named `accuracy`, as a softmax run has: the class read off the
    predicted presences against the class read off the (possibly mixed) targets."""

    head = SeverityHead(order)

    def accuracy(y_true: Any, y_pred: Any) -> Any:
        return ops.cast(
            ops.argmax(head(y_true), axis=1) == ops.argmax(head(y_pred), axis=1), "float32"
        )

    return accuracy
