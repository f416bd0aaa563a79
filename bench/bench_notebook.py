"""The notebook integration, measured in the real JupyterLite UI (headless Chromium) against
the running stack (./build.sh up):

- Stop: the time from a click on a 40 s query's Stop button to the cell's end, then the
  time a following `spark.range(5).count()` takes (the cluster is free);
- progress overhead: a 16-task query (16 partitions of 700 ms on the server's two cores)
  with the progress display attached and without it (upstream's handlers cleared and the
  server's report interval back at its default), alternating, in one notebook.

    build/venv-test/bin/python bench/bench_notebook.py [--stops 5] [--rounds 5]

Results and the machine they came from go to BENCHMARKS.md by hand.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests/browser"))

from lite_ui import LiteNotebook, text_of, wait_for  # noqa: E402
from test_notebook_ui import SETUP, click_stop, progress_state  # noqa: E402

TIMED_QUERY = """
import time
from pyspark_web.notebook import progress
{toggle}
began = time.monotonic()
rows = slow(16, 16, 700).collect()
print("seconds", time.monotonic() - began)
"""


def stop_once(notebook):
    index = notebook.start("rows = slow(40, 2, 2000).collect()")
    wait_for(lambda: progress_state(notebook, index)["stop"], 10, "the Stop button")
    time.sleep(1)
    clicked = click_stop(notebook, index)
    wait_for(lambda: notebook.finished(index), 10, "the cell ending", interval=0.02)
    to_end = time.monotonic() - clicked
    began = time.monotonic()
    notebook.run("print(spark.range(5).count())")
    return to_end, time.monotonic() - began


def timed(notebook, attached):
    toggle = "progress.attach(spark)" if attached else "progress.detach(spark)"
    text = text_of(notebook.run(TIMED_QUERY.format(toggle=toggle)))
    return float(text.split("seconds")[-1].split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stops", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with LiteNotebook() as notebook:
        notebook.run(SETUP)
        stops = [stop_once(notebook) for _ in range(args.stops)]
        with_display, without = [], []
        for _ in range(args.rounds):
            with_display.append(timed(notebook, True))
            without.append(timed(notebook, False))
    click_to_end = [s[0] for s in stops]
    next_cell = [s[1] for s in stops]
    print(
        f"stop: click to cell end, s: median {statistics.median(click_to_end):.2f} "
        f"(all: {', '.join(f'{x:.2f}' for x in click_to_end)})"
    )
    print(
        f"stop: next cell's range(5).count(), s: median {statistics.median(next_cell):.2f} "
        f"(all: {', '.join(f'{x:.2f}' for x in next_cell)})"
    )
    print(
        f"16-task query with the display, s: median {statistics.median(with_display):.3f} "
        f"(all: {', '.join(f'{x:.3f}' for x in with_display)})"
    )
    print(
        f"16-task query without it, s:       median {statistics.median(without):.3f} "
        f"(all: {', '.join(f'{x:.3f}' for x in without)})"
    )


if __name__ == "__main__":
    main()
