"""``python -m daemon`` is ``eboxd``."""

from daemon.cli import main

main()
