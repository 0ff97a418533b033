"""``python3 -m berth.cli``: the same as the ``berth`` command."""

import sys

from berth.cli.main import main

sys.exit(main())
