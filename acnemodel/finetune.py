"""Transfer learning's two phases: train the head on a frozen backbone, then fine-tune it all."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from acnemodel.fitting import compile_model, fit
from acnemodel.recipe import Recipe

if TYPE_CHECKING:
    from acnemodel.data import Part
    from acnemodel.train import TrainConfig

FINE_TUNE_RATE = 0.1  # phase 2 runs at a tenth of the head's rate: pretrained weights move little


def head_epochs(epochs: int) -> int:
    """A quarter of the budget (at least one epoch) for the head alone."""
    return max(1, epochs // 4)


def fit_transfer(
    model_name: str,
    weights: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    train: Any,
    watched: Part,
    recipe: Recipe,
    config: TrainConfig,
) -> tuple[Any, dict[str, list[float]], dict[str, Any]]:
    """Build backbone + head; with pretrained weights, head first, then everything, slower.

    Without weights (`none`) there is nothing to protect: one phase trains all layers.
    The epoch is chosen on validation within the last phase, as for any other model.
    """
    from acnemodel.backbones import check_weights
    from acnemodel.transfer import build_transfer

    name = model_name.removeprefix("transfer-")
    loaded = check_weights(weights)
    model, backbone = build_transfer(name, loaded, input_shape, num_classes)
    steps = max(1, len(train))  # batches per epoch: the dataset knows its cardinality
    history: dict[str, list[float]] = {}
    phases = []
    if loaded is not None and config.epochs > 1:
        first = head_epochs(config.epochs)
        backbone.trainable = False
        # the head phase only sets the head up: no early stopping, no selection
        compile_model(model, replace(recipe, patience=None), steps, first)
        h, _ = fit(model, train, watched, num_classes, replace(recipe, patience=None), first, 0)
        history = {k: list(v) for k, v in h.items()}
        phases.append({"phase": "head", "epochs": first, "learning_rate": recipe.learning_rate})
        backbone.trainable = True
        recipe = replace(recipe, learning_rate=recipe.learning_rate * FINE_TUNE_RATE)
        remaining = config.epochs - first
    else:
        remaining = config.epochs
    compile_model(model, recipe, steps, remaining)
    h, chosen = fit(model, train, watched, num_classes, recipe, remaining, config.verbose)
    for k, v in h.items():
        history.setdefault(k, []).extend(v)
    phases.append(
        {"phase": "fine-tune" if phases else "all layers", "epochs": remaining,
         "learning_rate": recipe.learning_rate}
    )  # fmt: skip
    chosen["phases"] = phases
    if len(phases) > 1 and chosen["selected_epoch"]:
        chosen["selected_epoch"] += phases[0]["epochs"]  # counted over both phases
    return model, history, chosen
