import sys

from berth.daemon.main import main

sys.exit(main())
