"""The notebook integration in IPython against the stack: a DataFrame as a cell's last
expression is an HTML table (patch 0018), and real server errors show in at most 40 lines
(pyspark_web/notebook/errors.py): a missing table (AnalysisException, with the JVM stack
trace only when asked for), a UDF that raises on the workers (PythonException with the
workers' traceback), a SparkConnectGrpcException. The UDF error is also shown by the
Python and IPython that JupyterLite runs (CPython 3.13, IPython 9.12.0), where frames
rebuilt from the workers' traceback used to break IPython's formatter (patch 0019).

(Named apart from tests/unit/test_notebook_ipython.py: test modules share one namespace.)
"""

import io
import json
import logging
import re
import sys

import pytest
from helpers import run_python
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

pytestmark = pytest.mark.usefixtures("stack")

URL = "http://127.0.0.1:8081"
FORMATTER_CRASH = "Unexpected exception formatting exception"
HANDLER_CRASH = "Custom TB Handler failed"
JVM_SWITCH = "spark.sql.pyspark.jvmStacktrace.enabled"


def run(shell, code):
    """Run a cell; its stdout and stderr (what the cell shows as text) and its result."""
    with capture_output() as out:
        result = shell.run_cell(code, store_history=True)
    return out.stdout + out.stderr, result


SESSION = (
    "from pyspark.sql import SparkSession\n"
    f'spark = SparkSession.builder.remote("{URL}").getOrCreate()'
)


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance()
    shell.colors = "nocolor"
    # A grpc-web session made inside IPython wires the integration in by itself.
    text, result = run(shell, SESSION)
    assert result.success, text
    yield shell
    run(
        shell,
        f'spark.conf.unset("spark.sql.repl.eagerEval.enabled")\nspark.conf.unset("{JVM_SWITCH}")',
    )


def check_error_cell(text):
    assert FORMATTER_CRASH not in text and HANDLER_CRASH not in text, text
    assert len(text.splitlines()) <= 40, text
    assert '"logger":' not in text and '{"ts"' not in text, "a JSON log record reached the cell"


def test_dataframe_is_an_html_table_with_eager_evaluation(shell, monkeypatch):
    shown = []
    monkeypatch.setattr(
        shell.displayhook, "write_format_data", lambda data, metadata=None: shown.append(data)
    )
    run(shell, 'spark.conf.set("spark.sql.repl.eagerEval.enabled", True)')
    text, result = run(shell, "spark.range(3).selectExpr('id', 'id * 2 AS twice')")
    assert result.success, text
    (data,) = shown
    assert "<table" in data["text/html"] and "<th>twice</th>" in data["text/html"]
    assert "<td>2</td><td>4</td>" in data["text/html"].replace("\n", "")
    # The text repr is upstream's (the first display prints the grid).
    assert data["text/plain"].startswith("+---+-----+")
    # display() too.
    with capture_output() as out:
        shell.run_cell("from IPython.display import display\ndisplay(spark.range(2))")
    assert any("<table" in (o.data.get("text/html") or "") for o in out.outputs)
    # Without eager evaluation: the schema as text, as upstream has it, and no table.
    shown.clear()
    run(shell, 'spark.conf.set("spark.sql.repl.eagerEval.enabled", False)')
    run(shell, "spark.range(3)")
    assert shown == [{"text/plain": "DataFrame[id: bigint]"}]


def test_missing_table(shell):
    from pyspark.logger import PySparkLogger

    logger = PySparkLogger.getLogger("SQLQueryContextLogger")
    consoles = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    cell_stderr = io.StringIO()
    previous = [h.setStream(cell_stderr) for h in consoles]  # a kernel's stderr is the cell
    try:
        text, result = run(shell, 'spark.sql("SELECT * FROM no_such_table").collect()')
    finally:
        for handler, stream in zip(consoles, previous):
            handler.setStream(stream)
    check_error_cell(text)
    assert cell_stderr.getvalue() == "", "upstream's JSON record reached the cell"
    lines = text.splitlines()
    assert lines[0].startswith(
        "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] "
        "The table or view `no_such_table` cannot be found."
    )
    assert re.search(r"^error class +TABLE_OR_VIEW_NOT_FOUND$", text, re.M)
    assert re.search(r"^SQL state +42P01$", text, re.M)
    assert re.search(r'^query context +SQL "no_such_table", characters 14-26$', text, re.M)
    assert re.search(r"^ +SELECT \* FROM no_such_table$", text, re.M)
    call = re.escape('spark.sql("SELECT * FROM no_such_table").collect()')
    assert re.search(rf"^called from +Cell In\[\d+\], line 1: {call}$", text, re.M)
    assert "\tat org.apache.spark" not in text and "JVM stacktrace" not in text
    assert f'spark.conf.set("{JVM_SWITCH}", True)' in text
    # The error itself is upstream's.
    error = result.error_in_exec
    assert error is sys.last_value and type(error).__name__ == "AnalysisException"
    assert error.getCondition() == "TABLE_OR_VIEW_NOT_FOUND" and error.getSqlState() == "42P01"
    assert error.getQueryContext()[0].fragment() == "no_such_table"
    assert "\n\nJVM stacktrace:\norg.apache.spark" in str(
        error
    )  # spark.sql.connect.serverStacktrace.enabled

    # Asked for: the JVM stack trace follows.
    run(shell, f'spark.conf.set("{JVM_SWITCH}", True)')
    try:
        text, _ = run(shell, 'spark.sql("SELECT * FROM no_such_table").collect()')
    finally:
        run(shell, f'spark.conf.unset("{JVM_SWITCH}")')
    assert FORMATTER_CRASH not in text and HANDLER_CRASH not in text
    head, _, stack = text.partition("\nJVM stack trace:\n")
    assert len(head.splitlines()) <= 40 and re.search(
        r"^error class +TABLE_OR_VIEW_NOT_FOUND$", head, re.M
    )
    assert stack.startswith(
        "org.apache.spark.sql.catalyst.ExtendedAnalysisException\n\tat org.apache.spark.sql."
    )


def test_udf_error_shows_the_workers_traceback(shell):
    text, result = run(
        shell,
        """from pyspark.sql.functions import udf

@udf("int")
def ratio(x):
    return 100 // (x - x)

spark.range(3).select(ratio("id")).collect()""",
    )
    check_error_cell(text)
    assert type(result.error_in_exec).__name__ == "PythonException"
    assert text.startswith("PythonException: An exception was thrown from the Python worker.")
    assert "Traceback (most recent call last):" in text  # the workers'
    assert re.search(r'File ".*", line 5, in ratio', text)
    assert "ZeroDivisionError: integer division or modulo by zero" in text
    call = re.escape('spark.range(3).select(ratio("id")).collect()')
    assert re.search(rf"^called from +Cell In\[\d+\], line 7: {call}$", text, re.M)


def test_spark_connect_grpc_exception(shell):
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException

    text, result = run(shell, "spark.sql(\"SELECT raise_error('the reason')\").collect()")
    check_error_cell(text)
    error = result.error_in_exec
    assert isinstance(error, SparkConnectGrpcException)
    assert text.startswith(f"{type(error).__name__}: [USER_RAISED_EXCEPTION] the reason")
    assert re.search(r"^error class +USER_RAISED_EXCEPTION$", text, re.M)
    assert re.search(rf"^SQL state +{error.getSqlState()}$", text, re.M)
    assert "\tat org.apache.spark" not in text


# The UDF fails inside a triple-quoted string; the workers' traceback quotes that line.
CELLS_313 = [
    SESSION,
    '''from pyspark.sql.functions import udf

@udf("string")
def label(x):
    return f"""row {x}:
    {100 // (x - x)}
    """

df = spark.range(2).select(label("id"))''',
    "df.collect()",
    # IPython's own display of the same frames, chained to a plain Python error.
    (
        "try:\n"
        "    df.collect()\n"
        "except Exception as error:\n"
        '    raise RuntimeError("the query failed") from error'
    ),
]

SCRIPT_313 = """
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
print(json.dumps(outputs))
"""


def test_udf_error_in_jupyterlites_python(ipython_313):
    script = SCRIPT_313.replace("CELLS", repr(json.dumps(CELLS_313)))
    outputs = json.loads(run_python(ipython_313, script).stdout.splitlines()[-1])
    integrated, chained = outputs[2], outputs[3]
    check_error_cell(integrated)
    assert integrated.startswith("PythonException: An exception was thrown from the Python worker.")
    assert "ZeroDivisionError" in integrated
    assert FORMATTER_CRASH not in chained and "TokenError" not in chained, chained
    assert "ZeroDivisionError" in chained and "RuntimeError: the query failed" in chained
    assert re.search(r"Cell In\[2\], line 6, in label", chained), chained
