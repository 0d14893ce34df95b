"""Compile and fit one model by a Recipe: schedule, loss, checkpoint selection on validation."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from acnemodel.recipe import Recipe

if TYPE_CHECKING:
    import keras

    from acnemodel.data import Part


def compile_model(
    model: keras.Model,
    recipe: Recipe,
    steps_per_epoch: int,
    epochs: int,
    presence_order: list[int] | None = None,
) -> None:
    """Optimiser (with its schedule) and loss (with its label smoothing) from the recipe; with
    a presence order, binary cross-entropy per class (acnemodel.presence)."""
    import keras

    rate: Any = recipe.learning_rate
    if recipe.schedule == "cosine":
        total = max(1, steps_per_epoch * epochs)
        warmup = min(total - 1, steps_per_epoch * recipe.warmup_epochs)
        rate = keras.optimizers.schedules.CosineDecay(
            # warm-up climbs linearly from a hundredth of the rate, then the cosine falls to 0
            initial_learning_rate=recipe.learning_rate / 100 if warmup else recipe.learning_rate,
            decay_steps=max(1, total - warmup),
            warmup_target=recipe.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    if recipe.optimizer == "adam":
        optimizer = (
            keras.optimizers.AdamW(rate, weight_decay=recipe.weight_decay)
            if recipe.weight_decay
            else keras.optimizers.Adam(rate)
        )
    elif recipe.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(rate)
    else:
        optimizer = keras.optimizers.SGD(rate, momentum=0.9, nesterov=True)
    if presence_order is not None:
        from acnemodel.severity import severity_accuracy

        loss = keras.losses.BinaryCrossentropy(label_smoothing=recipe.label_smoothing)
        metrics: list[Any] = [severity_accuracy(presence_order)]
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
        metrics = ["accuracy"]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)


def predict_probs(
    model: keras.Model, x: np.ndarray, *, tta: bool = False, batch_size: int = 64
) -> np.ndarray:
    """Class probabilities; with TTA the mean over the image and its left-right mirror."""
    if not len(x):
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    if tta:
        probs = (probs + model.predict(x[:, :, ::-1, :], batch_size=batch_size, verbose=0)) / 2
    return np.asarray(probs, dtype=np.float64)


def validation_scores(y: np.ndarray, probs: np.ndarray, num_classes: int) -> dict[str, float]:
    """Loss, accuracy, balanced accuracy and macro-F1 of one set of predictions."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    predicted = probs.argmax(axis=1)
    picked = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    labels = list(range(num_classes))
    return {
        "val_loss": float(-np.log(picked).mean()),
        "val_accuracy": float((predicted == y).mean()),
        "val_balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
        "val_macro_f1": float(
            f1_score(y, predicted, labels=labels, average="macro", zero_division=0)
        ),
    }


ToClasses = Callable[[np.ndarray], np.ndarray]  # the model's outputs → class probabilities


def selection_callback(
    validation: Part, num_classes: int, recipe: Recipe, to_classes: ToClasses | None = None
) -> Any:
    """A callback that scores validation each epoch and, with a patience, keeps the best epoch."""
    import keras

    class SelectOnValidation(keras.callbacks.Callback):
        """Writes val_* into the epoch's logs (History and Keras's progress line show them),
        stops after `patience` epochs without a better `monitor`, restores the best epoch.

        One callback rather than this plus Keras's EarlyStopping: balanced accuracy and macro-F1
        are not Keras metrics, and the scores must exist before anything reads them.
        """

        def __init__(self) -> None:
            super().__init__()
            self.best: float | None = None
            self.best_epoch = 0
            self.best_weights: list[np.ndarray] | None = None
            self.stopped_epoch: int | None = None

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            probs = predict_probs(self.model, validation.x)
            if to_classes is not None:
                probs = to_classes(probs)
            scores = validation_scores(validation.y, probs, num_classes)
            if logs is not None:
                logs.update(scores)
            if recipe.patience is None:
                return
            value = scores[recipe.monitor]
            sign = 1.0 if recipe.monitor == "val_loss" else -1.0  # lower is better for the loss
            if self.best is None or sign * value < sign * self.best - 1e-9:
                self.best, self.best_epoch = value, epoch + 1
                self.best_weights = self.model.get_weights()
            elif epoch + 1 - self.best_epoch >= recipe.patience:
                self.stopped_epoch = epoch + 1
                self.model.stop_training = True

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return SelectOnValidation()


def fit(
    model: keras.Model,
    train: Any,
    validation: Part,
    num_classes: int,
    recipe: Recipe,
    epochs: int,
    verbose: int,
    to_classes: ToClasses | None = None,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Fit; return the history and how the epoch was chosen (best, stopped, monitor)."""
    select = selection_callback(validation, num_classes, recipe, to_classes)
    fitted = model.fit(
        train,
        epochs=epochs,
        verbose=verbose,
        callbacks=[select] if len(validation) else [],
        shuffle=False,  # the tf.data pipeline shuffles, seeded; this only silences Keras's note
    )
    history = {k: [float(v) for v in vals] for k, vals in fitted.history.items()}
    ran = len(history.get("loss", []))
    chosen = {
        "epochs_run": ran,
        "selected_epoch": select.best_epoch if select.best_weights is not None else ran,
        "stopped_early_at": select.stopped_epoch,
        "monitor": recipe.monitor if recipe.patience else None,
        "best_validation": None if select.best is None else round(float(select.best), 6),
    }
    return history, chosen


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))
