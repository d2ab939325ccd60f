import sys

from targetfuse.cli import main

sys.exit(main())
