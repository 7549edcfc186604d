"""``python -m hfmat``: the ``hfmat`` command."""

import sys

from hfmat.cli import main

sys.exit(main())
