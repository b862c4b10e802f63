"""envcheck: what is wrong with this deep-learning machine, and the command that fixes it."""

__version__ = "0.1.0"
