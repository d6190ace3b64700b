"""``python -m geowarden``: the same command line as ``geowarden``."""

from geowarden.cli import main

main()
