"""`python -m pipeline ...` is `imgpipe ...`."""

import sys

from pipeline.cli import main

sys.exit(main())
