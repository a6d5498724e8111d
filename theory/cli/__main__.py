"""``python -m theory.cli``: the ``marginflow`` command."""

import sys

from ._main import main

sys.exit(main())
