"""pyspark_web.notebook.progress without a browser: what a query's display shows, how often
it is redrawn, and when the Stop button is offered (the JupyterLite UI tests run the real
thing: tests/browser/test_notebook_ui.py)."""

from types import SimpleNamespace

import pytest

from pyspark_web.notebook import progress

pytestmark = pytest.mark.unit


class Display:
    """IPython.display.display as the progress handler uses it: a list of what was shown."""

    def __init__(self):
        self.shown = []

    def __call__(self, bundle, raw, display_id):
        assert raw and display_id
        self.shown.append(bundle)
        return self

    def update(self, bundle, raw):
        assert raw
        self.shown.append(bundle)


def stage(done, total, read=0):
    return SimpleNamespace(num_tasks=total, num_completed_tasks=done, num_bytes_read=read)


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(progress, "_running", type(progress._running)())  # no other test's queries
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    return now


class Client:
    """A Spark Connect client as the handler sees it: only referenced (weakly)."""


def handler(display):
    client = Client()
    return progress.NotebookProgress(client, display), client


def test_a_query_draws_a_bar_that_becomes_a_summary(clock):
    display = Display()
    report, client = handler(display)
    report([stage(0, 4)], 2, "op", False)
    clock[0] += 1.0
    report([stage(3, 4, 2048)], 1, "op", False)
    clock[0] += 2.0
    report([stage(4, 4, 4096)], 0, "op", True)
    first, second, last = display.shown
    assert 'role="progressbar"' in first["text/html"] and 'aria-valuenow="0"' in first["text/html"]
    assert 'aria-valuenow="75"' in second["text/html"] and "3/4 tasks" in second["text/html"]
    assert "2.0 KiB read" in second["text/plain"] and "1 running" in second["text/plain"]
    assert (
        "progressbar" not in last["text/html"]
        and last["text/plain"] == "1 stage · 4 tasks · 4.0 KiB read · 3.0 s"
    )


def test_a_summary_after_a_stale_report_claims_no_partial_counts(clock):
    # Spark reports every 0.5 s; a query that ends between reports leaves 0/2 as the last.
    display = Display()
    report, client = handler(display)
    report([stage(0, 2), stage(0, 1)], 2, "op", False)
    clock[0] += 3.0
    report([stage(0, 2, 512), stage(0, 1)], 2, "op", True)
    assert display.shown[-1]["text/plain"] == "2 stages · 3 tasks · 3.0 s"


def test_redraws_are_throttled(clock):
    display = Display()
    report, client = handler(display)
    for step in range(20):  # 20 reports in 0.5 s
        report([stage(step, 40)], 2, "op", False)
        clock[0] += 0.025
    assert len(display.shown) == 2  # at most one per MIN_UPDATE_SECONDS
    report([stage(40, 40)], 0, "op", True)
    assert len(display.shown) == 3  # the end is always drawn


def test_a_short_query_leaves_nothing_behind(clock):
    display = Display()
    report, client = handler(display)
    report([stage(0, 1)], 1, "op", False)
    clock[0] += progress.SUMMARY_AFTER_SECONDS / 2
    report([stage(1, 1)], 0, "op", True)
    assert display.shown[-1] == {"text/plain": ""}


def test_a_query_that_ends_before_its_first_report_shows_nothing(clock):
    display = Display()
    report, client = handler(display)
    report([], 0, "op", True)
    assert display.shown == []


def test_concurrent_operations_get_displays_of_their_own(clock):
    display = Display()
    report, client = handler(display)
    report([stage(0, 2)], 1, "a", False)
    report([stage(0, 8)], 1, "b", False)
    assert (
        "0/2 tasks" in display.shown[0]["text/plain"]
        and "0/8 tasks" in display.shown[1]["text/plain"]
    )


@pytest.mark.parametrize(
    "platform, mode, offered",
    [
        ("linux", "sockets", False),
        ("emscripten", "worker-sync-xhr", False),
        ("emscripten", "worker-streaming", False),
        ("emscripten", "jspi", True),
    ],
)
def test_stop_is_offered_only_where_a_click_can_reach_a_running_query(
    monkeypatch, clock, platform, mode, offered
):
    monkeypatch.setattr(progress.sys, "platform", platform)
    monkeypatch.setattr(progress, "blocking_mode", lambda: mode)
    display = Display()
    report, client = handler(display)
    report([stage(0, 4)], 2, "operation-7f3a", False)
    markup = display.shown[0]["text/html"]
    assert ("<button" in markup) is offered
    if offered:
        [key] = list(progress._running)
        # The page gets a random key, never the operation (nor the session or the token).
        assert key in markup and "operation-7f3a" not in markup
        report([stage(4, 4)], 0, "operation-7f3a", True)
        assert key not in progress._running  # the key dies with the query


def test_a_stop_click_interrupts_the_operation_once(monkeypatch, clock):
    monkeypatch.setattr(progress, "stop_button_available", lambda: True)
    sent = []
    monkeypatch.setattr(
        progress, "_send_interrupt", lambda client, operation_id: sent.append(operation_id)
    )
    display = Display()
    report, client = handler(display)
    report([stage(1, 4)], 2, "op-1", False)
    [key] = list(progress._running)
    for _ in range(3):  # a double click, a second tab
        progress._on_message(SimpleNamespace(data=SimpleNamespace(stop=key)))
    progress._on_message(SimpleNamespace(data=SimpleNamespace(stop="not-a-key")))
    assert sent == ["op-1"]
    clock[0] += 1
    report([stage(1, 4)], 0, "op-1", True)
    assert display.shown[-1]["text/plain"].startswith("Stopped after 1.0 s (1/4 tasks done")
