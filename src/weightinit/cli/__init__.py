"""The `weightinit` command: argument parsing and printing only; the work is library calls."""

from ._main import main as main

__all__ = ["main"]
