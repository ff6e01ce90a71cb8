"""``python -m esclib.cli`` = ``esc``."""

import sys

from esclib.cli import main

sys.exit(main())
