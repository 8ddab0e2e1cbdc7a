"""`python -m kwsops.cli.main`: the `kwsops` command."""

import sys

from kwsops.cli.main import main

sys.exit(main())
