"""One place that makes runs repeatable: seeds for Python, NumPy, TensorFlow, Keras; determinism."""

from __future__ import annotations


def seed_everything(seed: int) -> None:
    """Python, NumPy and TF seeds, Keras's global seed generator, deterministic kernels.

    TF's global seed also enters every op-seeded random op created afterwards (tf.data's shuffle
    included), so this is called right before a dataset or a model is built.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
