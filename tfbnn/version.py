"""The version of tfbnn (one place, read by the package, its files and the command line)."""

__version__ = "0.1.0"
