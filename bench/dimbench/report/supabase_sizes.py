"""Supabase's compute sizes and their memory, to turn a measured working set into what to provision.

Source: Supabase docs, "Compute and Disk" (guides/platform/compute-and-disk): Micro 1 GB … 16XL 256 GB.
"""

from __future__ import annotations

COMPUTE_GB = (
    ("Micro", 1),
    ("Small", 2),
    ("Medium", 4),
    ("Large", 8),
    ("XL", 16),
    ("2XL", 32),
    ("4XL", 64),
    ("8XL", 128),
    ("12XL", 192),
    ("16XL", 256),
)
CACHE_SHARE = 0.75  # assumed: shared_buffers + the OS page cache hold about 3/4 of an instance's memory
SOURCE = "Supabase docs, 'Compute and Disk'"


def smallest_fitting(working_set_bytes: float) -> str:
    """The smallest compute size whose cache share holds the working set (or: beyond 16XL)."""
    for name, gb in COMPUTE_GB:
        if working_set_bytes <= gb * 1e9 * CACHE_SHARE:
            return f"{name} ({gb} GB)"
    return "beyond 16XL (256 GB): shard or partition"
