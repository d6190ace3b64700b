"""``python -m geowarden``: the command line (:mod:`geowarden.cli`)."""

from geowarden.cli import main

main()
