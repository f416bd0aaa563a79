"""Readable PySpark errors in a notebook.

An uncaught PySpark error shows, in at most ``MAX_LINES`` lines: its type and message, its
error class, SQL state and query context, and the line of the cell that called Spark, in
place of IPython's traceback through pyspark's internals (and, for Spark Connect, the JVM
stack trace that upstream appends to every server error's message).

Wired through public hooks only:

- IPython's ``InteractiveShell.set_custom_exc`` for ``PySparkException`` and its
  subclasses; the error object is not touched (``getCondition()``, ``getSqlState()``,
  ``str(e)`` are upstream's). ``sys.last_value`` is set as IPython sets it, so ``%tb``
  shows the whole traceback and ``%debug`` works.
- Logging configuration: upstream logs errors that have a query context as an ERROR JSON
  record (``SQLQueryContextLogger``, ``DataFrameQueryContextLogger``, with the message and
  so the JVM stack trace) to a stderr handler of its own, which in a notebook is the cell.
  A filter on that console handler keeps the record out of the cell; handlers you add to
  those loggers still get it.
- The JVM stack trace is shown when the active session's
  ``spark.sql.pyspark.jvmStacktrace.enabled`` (PySpark's switch for showing it in
  user-facing errors, off by default) is true. Reading it costs one Config RPC, made only
  for errors that carry a server stack trace (the server has just answered).

The display never raises: if formatting fails, the standard library's traceback text is
shown instead.
"""

import linecache
import logging
import sys
import traceback
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from pyspark.errors import PySparkException

# Issue 12: an uncaught PySpark error in at most 40 lines (the JVM stack trace, when asked
# for, comes on top).
MAX_LINES = 40
# The loggers of PySparkException._log_exception (pyspark/errors/exceptions/base.py).
QUERY_CONTEXT_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
JVM_STACKTRACE_CONF = "spark.sql.pyspark.jvmStacktrace.enabled"
# What SparkConnectGrpcException.getMessage() puts between the message and the stack trace.
_JVM_STACKTRACE_HEADER = "\n\nJVM stacktrace:\n"
_LABEL_WIDTH = 15
_MAX_SUMMARY_LINES = 6
_MAX_SOURCE_CHARS = 120

# Shell -> the custom exception handler it had before: (its classes, its bound handler).
_Previous = tuple[tuple[type, ...], Callable[..., Any] | None]
_previous: "weakref.WeakKeyDictionary[Any, _Previous]" = weakref.WeakKeyDictionary()


class _KeepOutOfCell(logging.Filter):
    """Drops every record: set on the console handler of upstream's query-context loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


_KEEP_OUT_OF_CELL = _KeepOutOfCell()


def keep_log_records_out_of_cells() -> None:
    """Keep upstream's query-context JSON records off the console (the notebook cell)."""
    from pyspark.logger import PySparkLogger

    for name in QUERY_CONTEXT_LOGGERS:
        # The logger upstream would create on the first error, with its stderr handler.
        logger = PySparkLogger.getLogger(name)
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler and _KEEP_OUT_OF_CELL not in handler.filters:
                handler.addFilter(_KEEP_OUT_OF_CELL)


def install(shell: Any) -> None:
    """Show uncaught PySpark errors in ``shell`` as ``format_error`` writes them. Idempotent;
    a custom exception handler the shell already had keeps its exceptions."""
    keep_log_records_out_of_cells()
    if shell in _previous:
        return
    classes = tuple(getattr(shell, "custom_exceptions", ()) or ())
    _previous[shell] = (classes, getattr(shell, "CustomTB", None) if classes else None)
    shell.set_custom_exc(classes + (PySparkException,), _handle)


def _handle(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None
) -> None:
    classes, previous = _previous.get(shell, ((), None))
    if (
        not isinstance(value, PySparkException)
        and previous is not None
        and isinstance(value, classes)
    ):
        previous(etype, value, tb, tb_offset=tb_offset)
        return None
    # As IPython's showtraceback does: %tb, %debug and post-mortem tools read these.
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = value
    # The first frames are IPython's own (run_code), which its tracebacks leave out too.
    while tb is not None and (tb.tb_frame.f_globals.get("__name__") or "").startswith("IPython."):
        tb = tb.tb_next
    try:
        lines = format_error(value, tb, shell=shell, jvm_stacktrace=_jvm_stacktrace_wanted(value))
    except Exception:
        lines = plain_traceback(etype, value, tb)
    try:
        # Where IPython's own showtraceback ends; kernels override it to send the error.
        shell._showtraceback(etype, value, lines)
    except Exception:
        print("\n".join(lines), file=sys.stderr)
    if getattr(shell, "call_pdb", False):
        shell.debugger(force=True)
    return None


def plain_traceback(etype: type, value: BaseException, tb: Any) -> list[str]:
    """The standard library's traceback text (it takes lines from linecache and tokenizes no
    file), or at least the error's type and message."""
    try:
        return "".join(traceback.format_exception(etype, value, tb)).splitlines()
    except Exception:
        return [f"{getattr(etype, '__name__', etype)}: {_text(value)}"]


def _text(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return "<unprintable>"


def _call(method: Any) -> Any:
    """The result of an optional getter of an error or query context, None if it fails."""
    try:
        return method() if callable(method) else None
    except Exception:
        return None


def _jvm_stacktrace_wanted(error: BaseException) -> bool:
    if not _call(getattr(error, "getStackTrace", None)):
        return False
    try:
        from pyspark.sql import SparkSession

        session = SparkSession.active()
        return str(session.conf.get(JVM_STACKTRACE_CONF, "false")).strip().lower() == "true"
    except Exception:
        return False


def _cell_label(shell: Any, filename: str) -> str | None:
    """What IPython's tracebacks call a notebook cell's file ("Cell In[3]"), or None."""
    try:
        label = shell.compile.format_code_name(filename)
    except Exception:
        return None
    return f"{label[0]} {label[1]}" if label else None


def _where(shell: Any, filename: str, lineno: Any) -> str:
    return f"{_cell_label(shell, filename) or filename}, line {lineno}"


def _in_library(frame: Any) -> bool:
    name = frame.f_globals.get("__name__") or ""
    return name.split(".")[0] in ("pyspark", "pyspark_web")


def _call_site(shell: Any, tb: Any) -> str | None:
    """The last frame before the error entered pyspark: where the user's code called it."""
    last = None
    while tb is not None:
        if _in_library(tb.tb_frame):
            break
        last = tb
        tb = tb.tb_next
    if last is None:
        return None
    filename, lineno = last.tb_frame.f_code.co_filename, last.tb_lineno
    source = linecache.getline(filename, lineno).strip()
    if len(source) > _MAX_SOURCE_CHARS:
        source = source[: _MAX_SOURCE_CHARS - 3] + "..."
    return _where(shell, filename, lineno) + (f": {source}" if source else "")


def _message(error: BaseException) -> list[str]:
    """The message without the JVM stack trace that Spark Connect appends to it."""
    text = _text(error)
    stack = _call(getattr(error, "getStackTrace", None))
    if stack and text.endswith(_JVM_STACKTRACE_HEADER + stack):
        text = text[: -len(_JVM_STACKTRACE_HEADER + stack)]
    lines: list[str] = []
    for line in text.strip("\n").splitlines():
        line = line.rstrip()
        if line or (lines and lines[-1]):  # no runs of blank lines
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _context_lines(shell: Any, error: BaseException, message: str) -> list[str]:
    lines: list[str] = []
    for context in (_call(getattr(error, "getQueryContext", None)) or [])[:2]:
        kind = getattr(_call(getattr(context, "contextType", None)), "name", "")
        fragment = _call(getattr(context, "fragment", None))
        if kind == "DataFrame":
            site = _call(getattr(context, "callSite", None)) or ""
            filename, _, lineno = site.rpartition(":")
            where = _where(shell, filename, lineno) if filename and lineno.isdigit() else site
            lines.append(f'DataFrame "{fragment}", called at {where}')
            continue
        start, stop = (
            _call(getattr(context, "startIndex", None)),
            _call(getattr(context, "stopIndex", None)),
        )
        head = f'SQL "{fragment}"' if fragment else "SQL"
        if isinstance(start, int) and isinstance(stop, int) and start >= 0:
            head += f", characters {start}-{stop}"
        owner = " ".join(
            filter(None, (_call(getattr(context, n, None)) for n in ("objectType", "objectName")))
        )
        lines.append(head + (f", in {owner}" if owner else ""))
        summary = (_call(getattr(context, "summary", None)) or "").strip("\n")
        shown = [line for line in summary.splitlines() if not line.startswith("== ")]
        if shown and summary.strip() not in message:  # the message often quotes it already
            lines.extend(shown[:_MAX_SUMMARY_LINES])
    return lines


def _field(label: str, lines: Sequence[str]) -> list[str]:
    return [(label if i == 0 else "").ljust(_LABEL_WIDTH) + line for i, line in enumerate(lines)]


def _fit(lines: list[str], budget: int) -> list[str]:
    """At most ``budget`` lines: the head and the tail, which hold the error's summary and, for
    a worker's traceback, the failing frames."""
    if len(lines) <= budget:
        return lines
    budget = max(budget, 3)
    head = (budget - 1) // 2
    tail = budget - 1 - head
    left_out = len(lines) - head - tail
    return (
        lines[:head]
        + [f"... {left_out} lines left out (%tb shows them) ..."]
        + lines[len(lines) - tail :]
    )


def format_error(
    error: BaseException, tb: Any = None, *, shell: Any = None, jvm_stacktrace: bool = False
) -> list[str]:
    """The lines that show an uncaught PySpark error: type and message, error class, SQL state,
    query context, the cell's call site, and how to see more; at most MAX_LINES of them unless
    ``jvm_stacktrace`` adds the server's stack trace."""
    message = _message(error)
    first = message[0].strip() if message else ""
    header = f"{type(error).__name__}: {first}" if first else type(error).__name__
    fields: list[str] = []
    condition = _call(getattr(error, "getCondition", None))
    if condition:
        fields += _field("error class", [condition])
    state = _call(getattr(error, "getSqlState", None))
    if state:
        fields += _field("SQL state", [state])
    context = _context_lines(shell, error, "\n".join(message))
    if context:
        fields += _field("query context", context)
    site = _call_site(shell, tb)
    if site:
        fields += _field("called from", [site])
    stack = _call(getattr(error, "getStackTrace", None))
    if stack and not jvm_stacktrace:
        footer = (
            f'Full traceback: %tb. JVM stack trace: spark.conf.set("{JVM_STACKTRACE_CONF}", True).'
        )
    else:
        footer = "Full traceback: %tb."
    fixed = 1 + (1 + len(fields) if fields else 0) + 2  # header, blank + fields, blank + footer
    body = _fit(message[1:], MAX_LINES - fixed)
    lines = [header, *body]
    if fields:
        lines += ["", *fields]
    lines += ["", footer]
    if stack and jvm_stacktrace:
        lines += ["", "JVM stack trace:", *stack.splitlines()]
    return lines
