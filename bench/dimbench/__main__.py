"""`python -m dimbench …`: the same as the `dimbench` command, without relying on PATH."""

import sys

from dimbench.cli import main

sys.exit(main())
