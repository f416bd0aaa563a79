"""A live progress bar with a Stop button for each query a notebook cell runs.

The display is one HTML output per query, updated in place through IPython's display
handles: a ``role="progressbar"`` element, stages and tasks done out of total, bytes read,
time elapsed. When the query ends it becomes a one-line summary, or, for a query shorter
than SUMMARY_AFTER_SECONDS, disappears.

Stop: the button posts a message on a ``BroadcastChannel``; the kernel's worker receives it
while the cell is suspended in its query (JSPI) and sends Spark Connect's Interrupt for that
operation with a plain asynchronous ``fetch``, since nothing may block there. The server
cancels the operation's jobs and ends its result stream, so the cell ends with upstream's
OPERATION_CANCELED error. The page only ever sees a random key per query: the token, the
session and the operation ids stay in the worker. The button is shown only where a callback
can run during a query: Pyodide entered through JSPI. On CPython, Jupyter's own interrupt
stops the cell.
"""

import html
import secrets
import sys
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from pyspark_web.transport import blocking_mode

# Shared by the page's buttons and the kernel; messages carry a random key per query.
CHANNEL_NAME = "pyspark-web-stop"
# The least time between two updates of a display: progress never costs the query time.
MIN_UPDATE_SECONDS = 0.25
INTERRUPT_METHOD = "/spark.connect.SparkConnectService/Interrupt"
REPORT_INTERVAL_CONF = "spark.connect.progress.reportInterval"
SERVER_DEFAULT_INTERVAL = "2000ms"  # as the server reports its default
NOTEBOOK_INTERVAL = "500ms"
# A query that took less leaves no summary: its bar disappears.
SUMMARY_AFTER_SECONDS = 2.0

# Stop key -> the display of a running query (only while it runs).
_running: "weakref.WeakValueDictionary[str, QueryDisplay]" = weakref.WeakValueDictionary()
# The handler of each client that reports to the notebook.
_handlers: "weakref.WeakKeyDictionary[Any, NotebookProgress]" = weakref.WeakKeyDictionary()
_listener: Any | None = None


def stop_button_available() -> bool:
    """Whether a Stop click can reach the kernel during a query."""
    return sys.platform == "emscripten" and blocking_mode() == "jspi"


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


class QueryDisplay:
    """The progress output of one query (one operation id)."""

    def __init__(self, client: Any, operation_id: str | None, display: Callable[..., Any]) -> None:
        self._client = weakref.ref(client)
        self.operation_id = operation_id
        self._display = display  # IPython.display.display
        self._handle: Any | None = None
        self._began = time.monotonic()
        self._last_update = 0.0
        self.stop_key = secrets.token_hex(12)
        self.stopping = False
        self._with_button = stop_button_available()

    def update(self, stages: Iterable[Any], inflight_tasks: int, done: bool) -> None:
        now = time.monotonic()
        if not done and now - self._last_update < MIN_UPDATE_SECONDS:
            return
        self._last_update = now
        stages = list(stages or ())
        if done:
            if self._handle is not None:
                self._handle.update(self._summary(stages), raw=True)
            _running.pop(self.stop_key, None)
            return
        bundle = self._bar(stages, inflight_tasks)
        if self._handle is None:
            if self._with_button:
                _running[self.stop_key] = self
            self._handle = self._display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)

    def _counts(self, stages: list) -> tuple:
        total = sum(stage.num_tasks for stage in stages)
        finished = sum(stage.num_completed_tasks for stage in stages)
        read = sum(stage.num_bytes_read for stage in stages)
        return total, finished, read, time.monotonic() - self._began

    def _bar(self, stages: list, inflight_tasks: int) -> dict[str, str]:
        """The running display: HTML, and the same line as text for other front ends."""
        total, finished, read, elapsed = self._counts(stages)
        percent = int(100 * finished / total) if total else 0
        text = (
            f"{len(stages)} stage{'s' if len(stages) != 1 else ''} · {finished}/{total} tasks"
            f" · {inflight_tasks} running · {_bytes(read)} read · {elapsed:.1f} s"
        )
        button = ""
        if self._with_button:
            # Only the random key reaches the page; the kernel maps it to the operation.
            click = (
                f"new BroadcastChannel('{CHANNEL_NAME}').postMessage({{stop: '{self.stop_key}'}});"
                "this.disabled = true; this.textContent = 'Stopping…';"
            )
            button = (
                f'<button type="button" onclick="{html.escape(click)}" '
                'style="margin-left:8px;padding:0 8px">Stop</button>'
            )
        markup = (
            '<div class="pyspark-web-progress" style="display:flex;align-items:center;'
            'gap:8px;font:12px/1.6 sans-serif">'
            f'<div role="progressbar" aria-label="Spark query progress" aria-valuemin="0" '
            f'aria-valuemax="100" aria-valuenow="{percent}" style="width:200px;height:8px;'
            'background:#ddd;border-radius:4px;overflow:hidden">'
            f'<div style="width:{percent}%;height:100%;background:#e25a1c"></div></div>'
            f"<span>{html.escape(text)}</span>{button}</div>"
        )
        return {"text/html": markup, "text/plain": f"[{percent:3d}%] {text}"}

    def _summary(self, stages: list) -> dict[str, str]:
        """The display once the query has ended: one line, or nothing for a short query."""
        total, finished, read, elapsed = self._counts(stages)
        if not self.stopping and elapsed < SUMMARY_AFTER_SECONDS:
            return {"text/plain": ""}
        if self.stopping:
            text = (
                f"Stopped after {elapsed:.1f} s ({finished}/{total} tasks done; "
                "Spark cancelled the rest)"
            )
        else:
            # The server reports at intervals, so a query often ends between reports: the
            # last one may still show tasks running. Stage and task totals are known from
            # a stage's start; bytes read is final only in a report where every task is done.
            text = f"{len(stages)} stage{'s' if len(stages) != 1 else ''} · {total} tasks"
            if finished == total:
                text += f" · {_bytes(read)} read"
            text += f" · {elapsed:.1f} s"
        markup = (
            '<div class="pyspark-web-progress-done" '
            'style="font:12px/1.6 sans-serif;color:#666">'
            f"{html.escape(text)}</div>"
        )
        return {"text/html": markup, "text/plain": text}

    def stop(self) -> None:
        """Ask the server to interrupt this operation, without blocking (see the module)."""
        client = self._client()
        if client is None or self.stopping or not self.operation_id:
            return
        self.stopping = True
        _send_interrupt(client, self.operation_id)


class NotebookProgress:
    """An upstream progress handler (``SparkSession.registerProgressHandler``) that gives
    each query of its session a QueryDisplay."""

    def __init__(self, client: Any, display: Callable[..., Any]) -> None:
        self._client = weakref.ref(client)
        self._display = display
        self._queries: dict[str | None, QueryDisplay] = {}

    def __call__(
        self,
        stages: Iterable[Any] | None,
        inflight_tasks: int,
        operation_id: str | None,
        done: bool,
    ) -> None:
        client = self._client()
        query = self._queries.get(operation_id)
        if query is None:
            if done or client is None:
                return  # a query that ended before its first report shows nothing
            query = self._queries[operation_id] = QueryDisplay(client, operation_id, self._display)
        query.update(stages or (), inflight_tasks, done)
        if done:
            del self._queries[operation_id]


def _send_interrupt(client: Any, operation_id: str) -> None:
    """Interrupt(operation_id) over the session's own grpc-web channel, as a fetch whose
    promise nobody waits for."""
    import js
    from pyodide.ffi import to_js

    from pyspark_web import grpcweb

    channel = client._channel
    request = client._interrupt_request("operation", operation_id)
    headers = channel.request_headers(client._builder.metadata(), None)
    init = {
        "method": "POST",
        "headers": headers,
        "body": to_js(grpcweb.encode_message(request.SerializeToString())),
    }
    promise = js.fetch(
        channel.base_url + INTERRUPT_METHOD, to_js(init, dict_converter=js.Object.fromEntries)
    )
    promise.catch(lambda error: js.console.warn(f"pyspark-web: the Stop request failed: {error}"))


def _on_message(event: Any) -> None:
    key = getattr(event.data, "stop", None)
    query = _running.get(str(key)) if key is not None else None
    if query is not None:
        query.stop()


def _listen_for_stop() -> None:
    global _listener
    if _listener is not None or not stop_button_available():
        return
    import js
    from pyodide.ffi import create_proxy

    _listener = js.BroadcastChannel.new(CHANNEL_NAME)
    _listener.onmessage = create_proxy(_on_message)


def attach(session: Any) -> None:
    """Report the queries of a Spark Connect session in the notebook."""
    from IPython.display import display

    client = session.client
    if client in _handlers:
        return
    # The server reports progress every 2 s by default, the first time 2 s into a query:
    # too late for a bar to appear promptly. The interval is a session conf; one the user
    # chose is kept.
    if session.conf.get(REPORT_INTERVAL_CONF) == SERVER_DEFAULT_INTERVAL:
        session.conf.set(REPORT_INTERVAL_CONF, NOTEBOOK_INTERVAL)
    handler = _handlers[client] = NotebookProgress(client, display)
    client.register_progress_handler(handler)
    _listen_for_stop()


def detach(session: Any) -> None:
    """Stop reporting a session's queries, and give back the server's report interval
    (until a cell starts again: the IPython events attach the active session anew)."""
    handler = _handlers.pop(session.client, None)
    if handler is None:
        return
    session.client.remove_progress_handler(handler)
    if session.conf.get(REPORT_INTERVAL_CONF) == NOTEBOOK_INTERVAL:
        session.conf.set(REPORT_INTERVAL_CONF, SERVER_DEFAULT_INTERVAL)


def _attach_active_session(*_: Any) -> None:
    from pyspark.sql.connect.session import SparkSession

    session = SparkSession.getActiveSession()
    if session is None or session.client in _handlers or session.client.is_closed:
        return
    try:
        attach(session)
    except Exception:
        # A session whose server cannot be reached: the cell's own calls will say so;
        # an IPython event callback must not print a traceback before every cell.
        return


def install(shell: Any) -> None:
    """Give every Connect session that is active when a cell starts or ends a progress
    display (IPython's pre_run_cell and post_run_cell events: a session made in a cell
    reports from the next query on)."""
    for event in ("pre_run_cell", "post_run_cell"):
        shell.events.register(event, _attach_active_session)
