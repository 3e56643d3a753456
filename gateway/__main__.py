"""`python -m gateway` is the `floorbell` command."""

from gateway.processes.cli import main

main()
