"""Append-only arrays that older readers can keep reading while a writer appends.

A reader holds a length ``n`` and reads ``[:n]``; the writer only ever writes past every
published length, and growing replaces the buffer with a bigger copy (the reader keeps the old
one). So a view of the tier is consistent without locks or copies of the data.
"""

from __future__ import annotations

import numpy as np


class GrowingArray:
    """A 1-d numpy array with amortised O(1) appends (capacity doubles)."""

    def __init__(self, dtype: np.dtype | type, capacity: int = 16) -> None:
        self.buffer = np.zeros(max(1, capacity), dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        end = self.size + len(values)
        if end > len(self.buffer):
            grown = np.zeros(max(end, 2 * len(self.buffer)), dtype=self.buffer.dtype)
            grown[: self.size] = self.buffer[: self.size]
            self.buffer = grown
        self.buffer[self.size : end] = values
        self.size = end

    def append(self, value: object) -> None:
        self.extend(np.asarray([value], dtype=self.buffer.dtype))

    def view(self) -> np.ndarray:
        """The current contents; later appends never change the returned array."""
        return self.buffer[: self.size]

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)
