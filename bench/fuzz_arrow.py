"""A long fuzz run of pyspark_web.arrow.read_stream: the strategies of
tests/unit/test_arrow_fuzz.py (mutated streams of our writer and of pyarrow), for as many
examples as asked, counting outcomes instead of stopping at the first failure.

    build/venv-test/bin/python bench/fuzz_arrow.py --examples 200000

Prints the examples run, how many read, how many ended in a named ArrowError, in the
safety net (ArrowError from an exception the reader does not name), over the per-example
time bound, or in any other exception (a bug: each kind's first input is saved under
--save for replay), the slowest example and the total time. Exits 1 if any example
escaped as another exception or ran over. The compressed seeds decode only where lz4 and
zstandard are installed (the test venv has neither; without them those seeds exercise
everything up to the codec).
"""

import argparse
import collections
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests/unit")]

import test_arrow_fuzz as fuzz  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from test_arrow_hostile import Overtime, deadline  # noqa: E402

import pyspark_web.arrow as arrow  # noqa: E402
from pyspark_web.arrow import reader  # noqa: E402

SEEDS = {"all": fuzz.ALL_SEEDS, "ours": fuzz.OUR_SEEDS, "pyarrow": fuzz.PYARROW_SEEDS}


class Tally:
    def __init__(self, save: Path) -> None:
        self.outcomes = collections.Counter()
        self.causes = collections.Counter()  # what the safety net caught, by type
        self.slowest = (0.0, "", b"")
        self.save = save
        self.saved = set()

    def run(self, name: str, data: bytes, seconds: float) -> None:
        gc.disable()  # timed without the collector's pauses over the fuzzer's own heap
        began = time.perf_counter()
        try:
            with deadline(seconds):
                arrow.read_stream(data)
            outcome = "read"
        except arrow.ArrowError as error:
            outcome = "ArrowError"
            if str(error).startswith(getattr(reader, "UNEXPECTED", "\0")):
                outcome = "safety net"
                self.causes[type(error.__cause__).__name__] += 1
        except Overtime:
            outcome = f"over {seconds:g} s"
        except Exception as error:  # noqa: BLE001 - counting them is the point
            outcome = f"other: {type(error).__name__}"
        took = time.perf_counter() - began
        gc.enable()
        self.outcomes[outcome] += 1
        if took > self.slowest[0]:
            self.slowest = (took, name, data)
        if outcome not in ("read", "ArrowError") and outcome not in self.saved:
            self.saved.add(outcome)
            self.save.mkdir(parents=True, exist_ok=True)
            (self.save / (outcome.replace(":", "").replace(" ", "-") + ".arrows")).write_bytes(data)


def _timed(data: bytes) -> float:
    began = time.perf_counter()
    try:
        arrow.read_stream(data)
    except Exception:  # noqa: BLE001 - only the time counts here
        pass
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument(
        "--seed", type=int, default=0, help="Hypothesis seed (runs are reproducible per seed)"
    )
    parser.add_argument(
        "--seeds", choices=sorted(SEEDS), default="all", help="which seed streams to mutate"
    )
    parser.add_argument(
        "--seconds", type=float, default=fuzz.SECONDS_PER_EXAMPLE, help="time bound per example"
    )
    parser.add_argument(
        "--save", type=Path, default=Path("build/fuzz-arrow"), help="where odd inputs are saved"
    )
    args = parser.parse_args()

    tally = Tally(args.save)
    began = time.perf_counter()

    @seed(args.seed)
    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(fuzz.mutated(SEEDS[args.seeds]))
    def run(example):
        tally.run(*example, args.seconds)
        done = sum(tally.outcomes.values())
        if done % 10_000 == 0:
            print(
                f"  {done:,} examples, {time.perf_counter() - began:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    run()
    total = time.perf_counter() - began
    examples = sum(tally.outcomes.values())
    print(
        f"{examples:,} examples of {args.seeds} seeds "
        f"(Hypothesis seed {args.seed}) in {total:.1f} s "
        f"({examples / total:,.0f}/s)"
    )
    for outcome, count in tally.outcomes.most_common():
        print(f"  {outcome:24s} {count:9,d}  {100 * count / examples:6.2f} %")
    if tally.causes:
        print(
            "  safety net caught: " + ", ".join(f"{k} {v}" for k, v in tally.causes.most_common())
        )
    took, name, data = tally.slowest
    replayed = min(_timed(data) for _ in range(5))
    print(
        f"  slowest example: {took * 1000:.1f} ms ({name}; "
        f"{replayed * 1000:.1f} ms replayed alone), "
        f"saved as {args.save}/slowest.arrows"
    )
    args.save.mkdir(parents=True, exist_ok=True)
    (args.save / "slowest.arrows").write_bytes(data)
    if tally.saved:
        print(f"  first input of each odd outcome saved in {args.save}/")
    bad = [o for o in tally.outcomes if o.startswith(("other", "over"))]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
