"""The notebook integration in IPython itself, without a server (pyspark_web/notebook/errors.py,
patches 0018-0020): an in-process InteractiveShell runs cells as a kernel would.

- A Connect DataFrame answers IPython's probes for display hooks with AttributeError, so
  IPython calls its _repr_html_ (the table itself needs a server: tests/stack/).
- Uncaught PySpark errors: at most 40 lines with type, error class, SQL state, message and
  query context; no JSON log record; the JVM stack trace only when asked for; the display
  falls back to plain text if formatting fails; plain Python errors keep IPython's display.
- Frames rebuilt from a worker's traceback do not break IPython's own traceback, on the
  Python and IPython that JupyterLite runs (CPython 3.13 from pyenv with IPython 9.12.0,
  as in Pyodide's lock; Python 3.13+ is where inspect trusts a code object's first line).
- UDFs with plain type hints, on a client without pandas and pyarrow, print no warning.
"""

import contextlib
import io
import json
import logging
import re
import sys
import warnings

import pytest
from helpers import PYODIDE_IPYTHON, ROOT, run_python
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

pytestmark = pytest.mark.unit

DEAD_URL = "http://127.0.0.1:9"  # nothing listens: a refused connection fails at once
FORMATTER_CRASH = "Unexpected exception formatting exception"
HANDLER_CRASH = "Custom TB Handler failed"


@pytest.fixture(scope="module")
def shell():
    from pyspark_web.notebook import errors

    shell = InteractiveShell.instance()
    shell.colors = "nocolor"
    errors.install(shell)  # what pyspark_web.notebook.install() does first
    return shell


@contextlib.contextmanager
def unreachable_session():
    """A Connect session whose server never answers: plans build, RPCs fail at once. It is
    stopped afterwards, so that no cell runs with it as the active session."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(DEAD_URL).create()
    try:
        yield spark
    finally:
        spark.stop()


def run(shell, code):
    """Run a cell; its stdout and stderr (what the cell shows as text) and its result."""
    with capture_output() as out:
        result = shell.run_cell(code, store_history=True)
    return out.stdout + out.stderr, result


def test_dataframe_answers_ipython_probes_with_attribute_error():
    from IPython.utils.dir2 import get_real_method

    probes = (
        "_ipython_canary_method_should_not_exist_",
        "_ipython_display_",
        "_repr_mimebundle_",
        "_repr_latex_",
        "_repr_pretty_",
        "_repr_markdown_",
    )
    with unreachable_session() as spark:  # no RPC: the probes do not ask for the schema
        df = spark.range(3)
        for name in probes:
            with pytest.raises(AttributeError):
                getattr(df, name)
        # What IPython's formatters ask: the canary is missing, so the real method is used.
        assert get_real_method(df, "_repr_html_") == df._repr_html_
        assert get_real_method(df, "_repr_latex_") is None
        # Columns by attribute and by name are as before.
        assert type(df.id).__name__ == "Column"
        assert type(df["_repr_latex_"]).__name__ == "Column"


def _error_cell_checks(text):
    assert FORMATTER_CRASH not in text and HANDLER_CRASH not in text
    assert len(text.splitlines()) <= 40, text
    assert '"logger":' not in text and '{"ts"' not in text, "a JSON log record reached the cell"


def _connect_error(
    context=True, stack="org.apache.spark.Boom\n\tat org.apache.spark.Thing.run(Thing.scala:1)"
):
    """An AnalysisException as Spark Connect's client builds it for a missing table."""
    import pyspark.sql.connect.proto as pb2
    from pyspark.errors.exceptions.connect import AnalysisException, SQLQueryContext

    contexts = []
    if context:
        proto = pb2.FetchErrorDetailsResponse.QueryContext(
            context_type=pb2.FetchErrorDetailsResponse.QueryContext.SQL,
            start_index=14,
            stop_index=26,
            fragment="no_such_table",
            summary=(
                "== SQL (line 1, position 15) ==\n"
                "select * from no_such_table\n"
                "              ^^^^^^^^^^^^^\n"
            ),
        )
        contexts = [SQLQueryContext(proto)]
    return AnalysisException(
        "[TABLE_OR_VIEW_NOT_FOUND] The table or view `no_such_table` cannot be found. "
        "SQLSTATE: 42P01",
        errorClass="TABLE_OR_VIEW_NOT_FOUND",
        messageParameters={"relationName": "`no_such_table`"},
        sql_state="42P01",
        server_stacktrace=stack,
        display_server_stacktrace=True,
        contexts=contexts,
    )


def test_analysis_exception_display(shell):
    shell.user_ns["make_error"] = _connect_error
    text, result = run(shell, "raise make_error()")
    _error_cell_checks(text)
    first = text.splitlines()[0]
    assert first.startswith(
        "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view `no_such_table`"
    )
    assert re.search(r"^error class +TABLE_OR_VIEW_NOT_FOUND$", text, re.M)
    assert re.search(r"^SQL state +42P01$", text, re.M)
    assert re.search(r'^query context +SQL "no_such_table", characters 14-26$', text, re.M)
    assert "select * from no_such_table" in text
    assert re.search(r"^called from +Cell In\[\d+\], line 1: raise make_error\(\)$", text, re.M)
    assert "JVM stacktrace" not in text and "\tat org.apache" not in text
    assert 'spark.conf.set("spark.sql.pyspark.jvmStacktrace.enabled", True)' in text
    # The display is only a display: the error is upstream's, whole.
    error = result.error_in_exec
    assert error is sys.last_value
    assert error.getCondition() == "TABLE_OR_VIEW_NOT_FOUND" and error.getSqlState() == "42P01"
    assert "JVM stacktrace:\norg.apache.spark.Boom" in str(error)


def test_query_context_log_record_stays_out_of_the_cell(shell):
    from pyspark.logger import PySparkLogger

    logger = PySparkLogger.getLogger("SQLQueryContextLogger")
    consoles = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    assert consoles, "upstream's logger has its stderr handler"
    cell = io.StringIO()
    previous = [h.setStream(cell) for h in consoles]  # stands for the cell's stderr
    added = _Records()
    logger.addHandler(added)
    try:
        shell.user_ns["make_error"] = _connect_error
        text, _ = run(shell, "raise make_error()")
    finally:
        logger.removeHandler(added)
        for handler, stream in zip(consoles, previous):
            handler.setStream(stream)
    _error_cell_checks(text)
    assert cell.getvalue() == "", "the JSON record reached the console handler"
    # Handlers a user adds still get it.
    assert [json.loads(r)["context"]["errorClass"] for r in added.records] == [
        "TABLE_OR_VIEW_NOT_FOUND"
    ]


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(self.format(record))


def test_jvm_stack_trace_only_when_asked(shell):
    from pyspark_web.notebook import errors

    lines = errors.format_error(_connect_error(), jvm_stacktrace=True)
    assert "JVM stack trace:" in lines
    assert "\tat org.apache.spark.Thing.run(Thing.scala:1)" in lines
    assert "\tat org.apache.spark.Thing.run(Thing.scala:1)" not in errors.format_error(
        _connect_error()
    )


def test_server_unreachable_error_display(shell):
    # A SparkConnectGrpcException (pyspark_web.ServerUnreachableError), raised by the client
    # here and again by a cell.
    from pyspark_web import ServerUnreachableError

    with unreachable_session() as spark, pytest.raises(ServerUnreachableError) as raised:
        spark.range(3).collect()
    shell.user_ns["error"] = raised.value
    text, result = run(shell, "raise error")
    _error_cell_checks(text)
    assert result.error_in_exec is raised.value
    first = text.splitlines()[0]
    assert first.startswith(
        f"ServerUnreachableError: Cannot reach the Spark Connect server at {DEAD_URL}"
    )
    assert re.search(
        r"^called from +.*test_notebook_ipython.py, line \d+: spark.range\(3\).collect\(\)$",
        text,
        re.M,
    )
    assert "pyspark/sql/connect" not in text, "no frames of pyspark's internals"


def test_long_messages_keep_their_head_and_tail(shell):
    from pyspark.errors.exceptions.connect import PythonException

    frames = "".join(
        f'  File "/srv/lib/mod{i}.py", line {i}, in f{i}\n    g{i}()\n' for i in range(40)
    )
    message = (
        "\n  An exception was thrown from the Python worker.\n"
        f"Traceback (most recent call last):\n{frames}ValueError: the cause\n"
    )
    shell.user_ns["error"] = PythonException(message=message)
    text, _ = run(shell, "raise error")
    _error_cell_checks(text)
    assert (
        text.splitlines()[0] == "PythonException: An exception was thrown from the Python worker."
    )
    assert "ValueError: the cause" in text and "Traceback (most recent call last):" in text
    assert "lines left out (%tb shows them)" in text


def test_display_falls_back_to_plain_text_when_formatting_fails(shell, monkeypatch):
    from pyspark_web.notebook import errors

    called = []

    def broken(*args, **kwargs):
        called.append(args)
        raise RuntimeError("formatting failed")

    monkeypatch.setattr(errors, "format_error", broken)
    shell.user_ns["make_error"] = _connect_error
    text, _ = run(shell, "raise make_error()")
    assert called, "the integration's display did not run"
    assert FORMATTER_CRASH not in text and HANDLER_CRASH not in text
    assert "Traceback (most recent call last):" in text
    assert "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND]" in text
    assert "formatting failed" not in text


def test_plain_python_errors_keep_ipython_display(shell):
    text, result = run(shell, "def half(x):\n    return x / 0\nhalf(1)")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert "Traceback (most recent call last)" in text
    assert re.search(r"Cell In\[\d+\], line 2, in half", text)
    assert "ZeroDivisionError: division by zero" in text


def test_udfs_with_plain_type_hints_print_no_warning(shell):
    imported = lambda: [name for name in ("pandas", "pyarrow") if sys.modules.get(name) is not None]  # noqa: E731
    assert imported() == [], "the test venv has neither"
    run(shell, "from pyspark.sql.functions import udf\nfrom pyspark.sql.types import IntegerType")
    text = ""
    # Every warning, each time (pytest and Python's registry would otherwise swallow repeats).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            out, result = run(
                shell, f"@udf(IntegerType())\ndef plus_{i}(x: int) -> int:\n    return x + {i}\n"
            )
            assert result.success
            text += out
        out, _ = run(
            shell, "twice = udf(lambda x: 2 * x, IntegerType(), useArrow=True)\ntwice.evalType"
        )
        text += out
    messages = [str(w.message) for w in caught]
    assert messages == [], messages
    assert "Warning" not in text, text
    assert imported() == []


# A worker traceback as Spark Connect reports it, from files the client does not have; the
# quoted line continues on the next line (a call, a triple-quoted string).
WORKER_TRACEBACK = """
  An exception was thrown from the Python worker. Please see the stack trace below.
Traceback (most recent call last):
  File "/srv/spark/site-packages/helpers/frames.py", line 88, in apply
    return frame.transform(
  File "{cell}", line 3, in describe
    {{1 / 0}}
ZeroDivisionError: division by zero
"""

# A cell whose function fails inside a triple-quoted string (the worker's line 3).
DESCRIBE_CELL = 'def describe(x):\n    text = f"""value:\n    {1 / 0}\n    """\n    return text\n'
RAISE_CELL = """from pyspark.errors.exceptions.base import recover_python_exception
from pyspark.errors.exceptions.connect import PythonException
raise recover_python_exception(PythonException(message=message))"""

# Runs cells in-process as a kernel does and prints what each showed (JSON, last line).
IPYTHON_SCRIPT = """
import json
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
shell = InteractiveShell.instance()
shell.colors = "nocolor"
outputs = []
for cell in json.loads(CELLS):
    with capture_output() as out:
        shell.run_cell(cell, store_history=True)
    outputs.append(out.stdout + out.stderr)
    if "describe" in shell.user_ns and "message" not in shell.user_ns:
        # The worker's traceback names the file of the cell that defined the function.
        cell_file = shell.user_ns["describe"].__code__.co_filename
        shell.user_ns["message"] = TRACEBACK.format(cell=cell_file)
print(json.dumps(outputs))
"""


def test_ipython_pins_follow_pyodide(lock):
    assert lock["packages"]["ipython"]["version"] == PYODIDE_IPYTHON.split("==")[1]
    pins = (ROOT / "tests/requirements.txt").read_text()
    assert f'{PYODIDE_IPYTHON}; python_version >= "3.12"' in pins


def test_worker_frames_do_not_break_ipython_tracebacks(ipython_313):
    cells = [DESCRIBE_CELL, RAISE_CELL, "%load_ext pyspark_web.notebook", RAISE_CELL]
    script = IPYTHON_SCRIPT.replace("CELLS", repr(json.dumps(cells))).replace(
        "TRACEBACK", repr(WORKER_TRACEBACK)
    )
    outputs = json.loads(run_python(ipython_313, script).stdout.splitlines()[-1])
    plain, integrated = outputs[1], outputs[3]
    # IPython's own display (the integration not installed): the error and its frames.
    assert FORMATTER_CRASH not in plain and "TokenError" not in plain, plain
    assert "PythonException" in plain and "ZeroDivisionError: division by zero" in plain
    assert re.search(r"Cell In\[1\], line 3, in describe", plain), plain
    # With %load_ext pyspark_web.notebook: the short display.
    _error_cell_checks(integrated)
    assert integrated.startswith("PythonException: An exception was thrown from the Python worker.")
    assert "ZeroDivisionError: division by zero" in integrated
