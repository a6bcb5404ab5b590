"""Row blocks of big .npy files, written and read with plain file I/O rather than memory maps.

A memory map counts every page it touches in the process's RSS, so generating or scanning a 6 GB array
through one would look like (and on a small machine, act like) 6 GB of memory. Explicit block reads and
appends keep the resident set at one block, whatever the corpus size.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np


class RowWriter:
    """Append (n, d) float32 blocks to a .npy file whose final shape is known up front."""

    def __init__(self, path: Path, rows: int, dim: int) -> None:
        self.handle: BinaryIO = path.open("wb")
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
            "fortran_order": False,
            "shape": (rows, dim),
        }
        np.lib.format.write_array_header_1_0(self.handle, header)
        self.expected = rows * dim * 4
        self.written = 0

    def write(self, block: np.ndarray) -> None:
        data = np.ascontiguousarray(block, dtype=np.float32).tobytes()
        self.handle.write(data)
        self.written += len(data)

    def close(self) -> None:
        self.handle.close()
        if self.written != self.expected:
            raise ValueError(f"wrote {self.written} bytes, expected {self.expected}")


class RowReader:
    """Read rows [start, stop) of a 2-D .npy file."""

    def __init__(self, path: Path) -> None:
        self.handle: BinaryIO = path.open("rb")
        version = np.lib.format.read_magic(self.handle)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(self.handle)
        self.shape, self.dtype = shape, dtype
        self.offset = self.handle.tell()
        self.row_bytes = int(np.prod(shape[1:])) * dtype.itemsize

    def __len__(self) -> int:
        return int(self.shape[0])

    def rows(self, start: int, stop: int) -> np.ndarray:
        self.handle.seek(self.offset + start * self.row_bytes)
        data = self.handle.read((stop - start) * self.row_bytes)
        return np.frombuffer(data, dtype=self.dtype).reshape((stop - start, *self.shape[1:]))

    def take(self, indices: np.ndarray) -> np.ndarray:
        return (
            np.stack([self.rows(int(i), int(i) + 1)[0] for i in indices])
            if len(indices)
            else np.zeros((0, *self.shape[1:]), dtype=self.dtype)
        )

    def close(self) -> None:
        self.handle.close()
