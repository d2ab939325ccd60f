import sys

from onboard.serve import main

sys.exit(main())
