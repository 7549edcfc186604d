import sys

from hfmat.cli import main

sys.exit(main())
