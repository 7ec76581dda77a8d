"""`python -m tfbnn`: the same command line as the `tfbnn` script (see `tfbnn.cli`)."""

from tfbnn.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
