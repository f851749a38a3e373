"""``python -m gensight.fakes``: run the fake provider until SIGINT/SIGTERM."""

import sys

from gensight.fakes.cli import main

sys.exit(main())
