"""How a model is trained: optimiser, schedule, loss, mixing, early stopping, TTA, per model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from acnemodel.errors import ModelError

OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine")
MONITORS = ("val_balanced_accuracy", "val_macro_f1", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class Recipe:
    """Training settings. The defaults are the paper's: Adam at 0.001, cross-entropy, no tricks.

    `patience` None trains every epoch and keeps the last (the paper); a number stops after that
    many epochs without a better `monitor` on validation and keeps the best epoch's weights.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0  # AdamW-style decoupled decay when > 0 (adam only)
    schedule: str = "constant"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    mixup: float = 0.0  # Beta(α, α) for MixUp; 0 = off
    cutmix: float = 0.0  # Beta(α, α) for CutMix; 0 = off (both on: half the batches each)
    class_balance: bool = False  # weight examples by n / (k · n_class)
    patience: int | None = None
    monitor: str = "val_balanced_accuracy"
    tta: bool = False  # average the prediction over the image and its horizontal flip

    def __post_init__(self) -> None:
        checks = (
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (self.monitor in MONITORS, f"monitor must be one of {', '.join(MONITORS)}"),
            (self.learning_rate > 0, "learning rate must be above 0"),
            (0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (self.mixup >= 0 and self.cutmix >= 0, "mixup and cutmix α must be 0 or above"),
            (self.warmup_epochs >= 0, "warm-up epochs must be 0 or above"),
            (self.patience is None or self.patience >= 1, "patience must be at least 1"),
            (self.weight_decay >= 0, "weight decay must be 0 or above"),
        )
        for ok, message in checks:
            if not ok:
                raise ModelError(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, overrides: dict[str, Any]) -> Recipe:
        """This recipe with the given fields replaced; None values mean "keep"."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ModelError(f"unknown recipe setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


PAPER = Recipe()  # --protocol paper: every model trains exactly as the paper did
# Early stopping for every honest run: the validation part exists to choose the epoch.
HONEST_PATIENCE = 8
