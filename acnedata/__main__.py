"""`python -m acnedata` runs the CLI."""

from acnedata.cli import main

main()
