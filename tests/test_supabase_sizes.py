"""What to provision on Supabase: a measured working set as the smallest compute size that caches it."""

from __future__ import annotations

from dimbench.report.deployment_text import compute_size_lines
from dimbench.report.supabase_sizes import smallest_fitting


def test_a_working_set_gets_the_smallest_size_whose_cache_share_holds_it():
    assert smallest_fitting(0.7e9) == "Micro (1 GB)"  # 0.75 GB of cache
    assert smallest_fitting(0.8e9) == "Small (2 GB)"
    assert smallest_fitting(11.0e9) == "XL (16 GB)"  # 12 GB of cache; Large holds 6


def test_a_working_set_beyond_the_largest_size_says_so():
    assert smallest_fitting(300e9).startswith("beyond 16XL")


def test_the_record_line_scales_the_measured_working_set_to_each_corpus_size():
    (line,) = compute_size_lines(4.178e9, 4.160e9)  # per million chunks: index + one-column table
    assert "100,000 chunks (834 MB) → **Small (2 GB)**" in line
    assert "1,000,000 chunks (8,338 MB) → **XL (16 GB)**" in line
    assert "10,000,000 chunks (83,380 MB) → **8XL (128 GB)**" in line


def test_without_a_measured_working_set_no_size_is_derived():
    (line,) = compute_size_lines(4.178e9, None)
    assert "not derived" in line
