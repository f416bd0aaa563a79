"""Notebook integration: what a PySpark session shows in IPython (JupyterLite's Pyodide
kernel and CPython Jupyter alike).

Active only under IPython, and only through public hooks: IPython's display and
exception hooks, upstream's progress handlers, logging and warnings configuration.
``install()`` is idempotent; pyspark-web calls it when a grpc-web channel is created
inside IPython, and ``%load_ext pyspark_web.notebook`` calls it by hand.

- ``errors``: uncaught PySpark errors in at most 40 lines (``errors.install``).
- ``progress``: a live progress bar with a Stop button per query (``progress.install``).
"""

from typing import Any

_installed_in: Any | None = None


def ipython() -> Any | None:
    """The running IPython shell, or None outside IPython (IPython is never imported here
    unless it is already loaded)."""
    import sys

    module = sys.modules.get("IPython")
    get = getattr(module, "get_ipython", None)
    return get() if get is not None else None


def install(shell: Any | None = None) -> bool:
    """Wire the integration into ``shell`` (default: the running IPython). Returns whether
    it is active."""
    global _installed_in
    shell = shell if shell is not None else ipython()
    if shell is None:
        return False
    if _installed_in is shell:
        return True
    _installed_in = shell
    from pyspark_web.notebook import errors, progress

    errors.install(shell)
    progress.install(shell)
    return True


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext pyspark_web.notebook``."""
    install(shell)
