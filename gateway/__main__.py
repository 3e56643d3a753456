"""`python -m gateway` is the `floorbell` command."""

from gateway.cli import main

main()
