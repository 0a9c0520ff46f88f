"""``python -m raycheck ...`` is the ``raycheck`` command (see :mod:`raycheck.cli`)."""

import sys

from raycheck.cli import main

sys.exit(main())
