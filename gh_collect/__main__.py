"""``python -m gh_collect`` is the same as ``gh-collect``."""

from gh_collect.cli import main

main()
