"""``python -m neural_arch ...``: the same as the ``neural-arch`` command."""
import sys

from .cli import main

sys.exit(main())
