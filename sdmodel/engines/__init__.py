"""Simulation engines. Only the modules in this package import an engine."""

from __future__ import annotations

import numpy as np


def unchanging(values: np.ndarray) -> bool:
    """Whether a series (time first) holds its first value throughout, so a constant can drop its time axis.

    NaN equals NaN here: a constant the model leaves missing (``:NA:``) is still a constant.
    """
    values = np.asarray(values)
    return bool(np.array_equal(values, np.broadcast_to(values[:1], values.shape), equal_nan=True))
