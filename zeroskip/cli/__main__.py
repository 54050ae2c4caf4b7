"""``python -m zeroskip.cli``: the ``zeroskip`` command."""

import sys

from zeroskip.cli import main

sys.exit(main())
