import sys

from inception_v2.cli import main

sys.exit(main())
