import sys

from ground.serve import main

sys.exit(main())
