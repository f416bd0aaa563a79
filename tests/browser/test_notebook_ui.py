"""The notebook integration in the real JupyterLite UI (headless Chromium, offline): live
progress, Stop, and no secret in the page or the saved notebook."""

import time

import pytest
from lite_ui import LiteNotebook, text_of, wait_for

pytestmark = pytest.mark.usefixtures("stack")

TOKEN = "nbTOKENnotInTheDocument42"
SETUP = f"""
%pip install pyspark-web
from pyspark.sql import SparkSession, functions as F
# Split, so that the token is not in the cell's source either.
token = "{TOKEN[:7]}" + "{TOKEN[7:]}"
spark = SparkSession.builder.remote(f"http://127.0.0.1:8081/;token={{token}}").getOrCreate()

def slow(rows, partitions, millis):
    # Each row sleeps on the server, so a query's length is known: rows / partitions * millis.
    return spark.range(0, rows, 1, partitions).select(
        "id", \
F.expr(f"java_method('java.lang.Thread', 'sleep', CAST({{millis}} AS BIGINT))").alias("slept"))

# A fresh server's first job pays for JIT and codegen (about 1 s here); the tests below
# time the progress display, not that.
slow(2, 1, 0).collect()
print(spark.version)
"""
BAR = ".pyspark-web-progress [role=progressbar]"


@pytest.fixture(scope="module")
def notebook():
    with LiteNotebook() as notebook:
        outputs = notebook.run(SETUP)
        assert "4.3.0" in text_of(outputs), text_of(outputs)
        yield notebook


def progress_state(notebook, index):
    """What a cell's output area shows: its progress bar's value (None without one), the
    Stop button's presence, the summary line's text."""
    return notebook.js(
        """
        const cell = window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]].node;
        const bar = cell.querySelector(arguments[1]);
        const stop = [...cell.querySelectorAll('button')]\
.find((b) => b.textContent.trim() === 'Stop');
        const done = cell.querySelector('.pyspark-web-progress-done');
        return {value: bar ? Number(bar.getAttribute('aria-valuenow')) : null, stop: !!stop,
                summary: done ? done.textContent : null};
        """,
        index,
        BAR,
    )


def test_a_running_query_shows_live_progress_then_a_summary(notebook):
    began = time.monotonic()
    index = notebook.start("print(len(slow(16, 2, 500).collect()))")  # 8 rows per task, 4 s
    wait_for(lambda: progress_state(notebook, index)["value"] is not None, 3, "the progress bar")
    assert time.monotonic() - began < 3
    values = [progress_state(notebook, index)["value"]]
    while not notebook.finished(index):
        state = progress_state(notebook, index)
        if state["value"] is not None:
            values.append(state["value"])
        time.sleep(0.2)
    outputs = notebook.outputs(index)
    assert "16" in text_of(outputs)
    final = progress_state(notebook, index)
    assert final["value"] is None and not final["stop"]
    assert final["summary"] is not None and "1 stage · 2 tasks" in final["summary"]
    assert values == sorted(values) and 0 <= values[0] < 100


def click_stop(notebook, index):
    """Click the cell's Stop button as a person would (by its name, through WebDriver)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    cells = notebook.driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")
    for _ in range(10):  # an update may replace the output's DOM between find and click
        try:
            button = cells[index].find_element(By.XPATH, ".//button[normalize-space()='Stop']")
            button.click()
            return time.monotonic()
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError("the Stop button kept being replaced")


def test_stop_ends_a_long_query_and_frees_the_cluster(notebook):
    index = notebook.start("rows = slow(40, 2, 2000).collect()")  # 40 s
    wait_for(lambda: progress_state(notebook, index)["stop"], 10, "the Stop button")
    time.sleep(1)
    clicked = click_stop(notebook, index)
    wait_for(lambda: notebook.finished(index), 2, "the cell ending after Stop", interval=0.05)
    assert time.monotonic() - clicked < 2
    text = text_of(notebook.outputs(index))
    assert "OPERATION_CANCELED" in text
    assert "Stopped after" in progress_state(notebook, index)["summary"]
    began = time.monotonic()
    outputs = notebook.run("print(spark.range(5).count())", timeout=10)
    assert text_of(outputs).strip().endswith("5")
    assert time.monotonic() - began < 10


def test_the_token_reaches_neither_the_page_nor_the_notebook(notebook):
    index = notebook.start("print(len(slow(16, 2, 500).collect()))")
    wait_for(lambda: progress_state(notebook, index)["stop"], 10, "the Stop button")
    page = notebook.js("return document.documentElement.outerHTML")
    notebook.wait(index)
    saved = notebook.notebook_json()
    # Asked for only now, so that printing it does not put it into the snapshots.
    session_id = text_of(notebook.run("print(spark.client._session_id)")).strip()
    assert len(session_id) == 36
    assert "pyspark-web-progress" in page and "pyspark-web-progress-done" in saved
    for secret in (TOKEN, session_id):
        assert secret not in page
        assert secret not in saved


def strip_ansi(text):
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_a_dataframe_shows_as_an_html_table(notebook):
    outputs = notebook.run(
        'spark.conf.set("spark.sql.repl.eagerEval.enabled", True)\n'
        'spark.range(3).selectExpr("id", "id * 2 AS twice")'
    )
    [result] = [o for o in outputs if o["output_type"] == "execute_result"]
    html = "".join(result["data"]["text/html"])
    assert "<table" in html and "twice" in html
    cells = notebook.js(
        "const cell = window.jupyterapp.shell.currentWidget.content.widgets.at(-1).node;"
        "return [...cell.querySelectorAll('.jp-OutputArea table td')]"
        ".map((td) => td.textContent.trim());"
    )
    assert cells == ["0", "0", "1", "2", "2", "4"]


def error_output(outputs):
    [error] = [o for o in outputs if o["output_type"] == "error"]
    lines = strip_ansi("\n".join(error["traceback"])).splitlines()
    streams = "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")
    return lines, streams


def test_an_uncaught_spark_error_is_short_and_says_what_matters(notebook):
    lines, streams = error_output(
        notebook.run('spark.sql("SELECT * FROM no_such_table").collect()')
    )
    text = "\n".join(lines)
    assert len(lines) <= 40, text
    assert "AnalysisException" in text and "TABLE_OR_VIEW_NOT_FOUND" in text and "42P01" in text
    assert "no_such_table" in text
    assert "JVM stacktrace" not in text and "org.apache.spark" not in text
    assert "SQLQueryContextLogger" not in streams and '"level": "ERROR"' not in streams


def test_an_uncaught_udf_error_shows_the_worker_traceback(notebook):
    source = (
        "from pyspark.sql.functions import udf\n"
        "@udf('int')\n"
        "def broken(x):\n"
        "    return x // 0\n"
        "spark.range(1).select(broken('id')).collect()"
    )
    lines, streams = error_output(notebook.run(source))
    text = "\n".join(lines + [streams])
    assert "Unexpected exception formatting exception" not in text and "TokenError" not in text
    assert "ZeroDivisionError" in text and "x // 0" in text
    assert len(lines) <= 40, text


SCREENSHOT_CELLS = [
    """%pip install pyspark-web
from pyspark.sql import SparkSession, functions as F
spark = SparkSession.builder.remote("http://127.0.0.1:8081").getOrCreate()
spark.conf.set("spark.sql.repl.eagerEval.enabled", True)""",
    """spark.createDataFrame(
    [("Ada", 1815, 36), ("Grace", 1906, 85), ("Linus", 1969, 56)], \
"name string, born int, revenue int")""",
]
SLOW_CELL = """slow = spark.range(0, 24, 1, 12).select(
    "id", F.expr("java_method('java.lang.Thread', 'sleep', 800L)"))
rows = slow.collect()"""


def test_screenshot_of_a_table_and_a_progress_bar():
    """The README's picture (docs/notebook.png is a copy of build/notebook.png): a fresh
    notebook with a table, and a query running with its progress bar and Stop."""
    from helpers import BUILD

    with LiteNotebook(width=1100, height=720) as notebook:
        for cell in SCREENSHOT_CELLS:
            notebook.run(cell)
        index = notebook.start(SLOW_CELL)  # 12 tasks in 6 waves, 10 s
        wait_for(lambda: (progress_state(notebook, index)["value"] or 0) > 0, 30, "some progress")
        path = BUILD / "notebook.png"
        notebook.driver.find_element("css selector", ".jp-NotebookPanel").screenshot(str(path))
        notebook.wait(index)
    assert path.stat().st_size > 10_000
