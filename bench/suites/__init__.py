"""asv suites over the smoke corpus (see README: `asv run --python=same --quick`)."""
