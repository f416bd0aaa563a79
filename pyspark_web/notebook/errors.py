"""Readable PySpark errors in a notebook (see the package docstring)."""

from typing import Any


def install(shell: Any) -> None:
    """Placeholder: the error display is wired here."""
