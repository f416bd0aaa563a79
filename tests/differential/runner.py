"""Run every case of cases.py (or of another cases file) against one Spark Connect URL and
write the results as JSON.

    python runner.py URL OUTPUT.json [CASES_FILE]

A cases file other than cases.py runs as ``__main__``, as a script or notebook would.

Runs inside the virtualenv under test (the stock native client, or pyspark-web), so it
imports nothing but PySpark and the standard library.
"""

import contextlib
import io
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyspark.sql import DataFrame, Row, SparkSession  # noqa: E402


def load_cases(path=None):
    if path is None:
        from cases import CASES

        return CASES
    namespace = {"__name__": "__main__", "__file__": str(path)}
    exec(compile(Path(path).read_text(), str(path), "exec"), namespace)
    return namespace["CASES"]


# Expression and plan ids grow with everything the server has run.
_VOLATILE = [(re.compile(r"#\d+L?"), "#N"), (re.compile(r"plan_id=\d+"), "plan_id=N")]


def normalize_text(text):
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def encode(value):
    """A JSON form that keeps Python types visible (int vs float, bytes vs bytearray ...)."""
    if isinstance(value, Row):
        fields = list(value.__fields__) if hasattr(value, "__fields__") else None
        return {"Row": {"fields": fields, "values": [encode(v) for v in value]}}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, (bytes, bytearray)):
        return {type(value).__name__: value.hex()}
    if isinstance(value, float):
        return {"float": repr(value)}
    if value is None or isinstance(value, (bool, int, str)):
        return {type(value).__name__: value}
    return {type(value).__name__: repr(value) if not hasattr(value, "toJson") else str(value)}


def encode_error(error):
    result = {"error": type(error).__name__}
    for name, method in (
        ("condition", "getCondition"),
        ("sqlstate", "getSqlState"),
        ("parameters", "getMessageParameters"),
    ):
        if hasattr(error, method):
            result[name] = getattr(error, method)()
    if "condition" not in result:
        result["message"] = str(error)[:500]
    return result


def run_case(spark, case):
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            value = case(spark)
            if isinstance(value, DataFrame):
                shown = io.StringIO()
                with contextlib.redirect_stdout(shown):
                    value.show(50, truncate=False)
                result = {
                    "schema": value.schema.json(),
                    "rows": encode(value.collect()),
                    "show": shown.getvalue(),
                }
            else:
                result = {"value": encode(value)}
    except Exception as error:  # the comparison is the point: record, do not stop
        result = encode_error(error)
    if printed.getvalue():
        result["printed"] = normalize_text(printed.getvalue())
    return result


def main(url, output, cases_file=None):
    spark = SparkSession.builder.remote(url).getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    cases = load_cases(cases_file)  # after the session: a module may define UDFs
    results = {case.__name__: run_case(spark, case) for case in cases}
    spark.stop()
    Path(output).write_text(json.dumps(results, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(*sys.argv[1:])
