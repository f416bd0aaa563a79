"""Drive a fresh notebook in the real JupyterLite UI (dist/lite, served by the stack at
/lite/) in headless Chromium, offline: type a cell, run it through JupyterLab's own
commands, watch its outputs and its DOM.

    with LiteNotebook() as notebook:
        notebook.run("print(1)")
"""

import json
import tempfile
import time

from helpers import CHROME_FLAGS
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

LAB = "http://127.0.0.1:8000/lite/lab/index.html"
# pytest-pyodide adds these two for its own browsers; here the driver is ours.
FLAGS = ["--headless=new", "--no-sandbox", *CHROME_FLAGS]

PANEL = "window.jupyterapp.shell.currentWidget"
KERNEL_IDLE = (
    f"const p = {PANEL}; return !!(p && p.sessionContext && p.sessionContext.session && "
    "p.sessionContext.session.kernel && p.sessionContext.session.kernel.status === 'idle');"
)


def wait_for(condition, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


class LiteNotebook:
    """A new, untitled notebook with the Python (Pyodide) kernel, in its own browser."""

    def __init__(self, width=1400, height=1000):
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in [*FLAGS, f"--user-data-dir={tempfile.mkdtemp()}"]:
            options.add_argument(flag)
        options.add_argument(f"--window-size={width},{height}")
        self.driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))

    def __enter__(self):
        try:
            self.open()
        except BaseException:
            self.driver.quit()
            raise
        return self

    def __exit__(self, *exc_info):
        self.driver.quit()

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def open(self):
        self.driver.get(LAB)
        wait_for(
            lambda: self.js("return !!(window.jupyterapp && window.jupyterapp.commands)"),
            120,
            "JupyterLab loading",
        )
        # Before the layout is restored, the new notebook would be replaced by the launcher.
        self.js(
            "window.jupyterapp.restored.then(() => "
            "window.jupyterapp.commands.execute('notebook:create-new', {kernelName: 'python'}))"
        )
        wait_for(lambda: self.js(KERNEL_IDLE), 120, "the kernel becoming ready")

    def cells(self):
        return self.js(f"return {PANEL}.content.widgets.length")

    def start(self, source):
        """Put source into a new last cell and run it; returns its index at once."""
        index = self.js(
            f"""
            const panel = {PANEL};
            const notebook = panel.content;
            const model = notebook.model.sharedModel;
            let index = model.cells.length - 1;
            if (model.cells[index].getSource() !== '' || \
notebook.widgets[index].model.executionCount !== null) {{
              model.insertCell(model.cells.length, {{cell_type: 'code', source: ''}});
              index = model.cells.length - 1;
            }}
            model.cells[index].setSource(arguments[0]);
            notebook.activeCellIndex = index;
            window.jupyterapp.commands.execute('notebook:run-cell');
            return index;
            """,
            source,
        )
        return index

    def finished(self, index):
        return self.js(
            f"const cell = {PANEL}.content.widgets[arguments[0]]; "
            "return cell.model.executionCount !== null "
            "&& !cell.node.classList.contains('jp-mod-running') "
            f"&& {PANEL}.sessionContext.session.kernel.status === 'idle';",
            index,
        )

    def wait(self, index, timeout=180):
        wait_for(lambda: self.finished(index), timeout, f"cell {index} finishing")
        return self.outputs(index)

    def run(self, source, timeout=180):
        return self.wait(self.start(source), timeout)

    def outputs(self, index):
        return self.js(
            f"return {PANEL}.content.widgets[arguments[0]].model.outputs.toJSON();", index
        )

    def output_node(self, index):
        return self.driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")[
            index
        ].find_element(By.CSS_SELECTOR, ".jp-OutputArea")

    def notebook_json(self):
        """The notebook document as JupyterLab would save it."""
        return json.dumps(self.js(f"return {PANEL}.content.model.toJSON();"))


def text_of(outputs):
    """The text a person reads in a cell's outputs (HTML outputs by their text/plain)."""
    parts = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            parts.append("".join(output.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            parts.append("".join(output.get("data", {}).get("text/plain", "")))
        elif kind == "error":
            parts.append(
                "\n".join(output.get("traceback", []))
                or f"{output.get('ename')}: {output.get('evalue')}"
            )
    return "".join(parts)
