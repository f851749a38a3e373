import sys

from gensight.cli import main

sys.exit(main())
