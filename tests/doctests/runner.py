"""Apache Spark's own doctests of the Spark Connect client, run against a server.

    python runner.py URL OUTPUT.json [MODULE...]

or, from Python (Pyodide included), ``run(URL, modules=None) -> dict``. Only the standard
library and the installed pyspark are used, so the same file runs in the stock client,
in pyspark-web and in Pyodide.

For each module, the doctest globals are what the module's upstream ``_test()`` builds:
a copy of a module's ``__dict__`` (for DataFrame, Column and Window the classic module,
whose docstrings the Connect classes inherit) plus ``spark``, and the docstrings are that
module's, found by ``doctest.DocTestFinder``, run with upstream's option flags.
Unlike upstream, no docstring is removed when pandas or pyarrow is missing: there the
pandas APIs must fail with their install note, and that is checked too. (Upstream's server
also runs in SPARK_HOME, whose python/test_support files a few docstrings read, e.g.
input_file_block_start: against another server those fail for every client alike.)

Each docstring runs isolated from the others and from earlier runs:
- in a Spark Connect session of its own (``builder.create()``, released afterwards), so
  temporary views and functions, SQL settings and streaming queries end with it;
- with a fresh copy of the globals;
- DataFrames it cached are unpersisted (the server's cache outlives sessions);
- tables, views, global temporary views, databases and functions it created on the server
  (found by comparing the catalog before and after) are dropped, if their name appears in
  the docstring: anything else was made by another client of the same server.
The report says what was dropped after which docstring (cleanups), and what the whole run
left on the server (left_behind; nothing, when the isolation works).
"""

import doctest
import importlib
import json
import re
import sys
import time
import traceback

UPSTREAM_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.IGNORE_EXCEPTION_DETAIL

# The Connect module (what upstream's _test() lives in) -> the module whose __dict__ its
# _test() copies into the globals and whose docstrings it runs, and the optionflags it uses.
# tests/doctests/test_upstream_doctests.py checks this table against the _test() sources.
MODULES = {
    "pyspark.sql.connect.functions.builtin": (
        "pyspark.sql.connect.functions.builtin",
        UPSTREAM_FLAGS,
    ),
    "pyspark.sql.connect.dataframe": ("pyspark.sql.dataframe", UPSTREAM_FLAGS),
    "pyspark.sql.connect.column": ("pyspark.sql.column", UPSTREAM_FLAGS),
    "pyspark.sql.connect.group": (
        "pyspark.sql.connect.group",
        doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.REPORT_NDIFF,
    ),
    "pyspark.sql.connect.window": ("pyspark.sql.window", UPSTREAM_FLAGS),
    "pyspark.sql.connect.catalog": ("pyspark.sql.connect.catalog", UPSTREAM_FLAGS),
    "pyspark.sql.connect.conf": ("pyspark.sql.connect.conf", UPSTREAM_FLAGS),
}

FAILURE_CHARS = 800  # first_failure is cut to this
SOURCE_CHARS = 240  # of which the example's source takes at most this, leaving room for the error


class _Recorder(doctest.DocTestRunner):
    """A DocTestRunner that prints nothing and keeps the first failure of a docstring."""

    first_failure = None

    def _keep(self, example, outcome):
        if self.first_failure is None:
            source = example.source.strip()
            if len(source) > SOURCE_CHARS:
                source = source[: SOURCE_CHARS - 3] + "..."
            # The server's Java stack trace says nothing about the client and would fill the
            # space: its lines go.
            outcome = "\n".join(
                line
                for line in outcome.strip().splitlines()
                if line != "JVM stacktrace:" and not line.startswith("\tat ")
            )
            text = f">>> {source}\n{outcome}"
            if len(text) > FAILURE_CHARS:
                text = text[: FAILURE_CHARS - 3] + "..."
            self.first_failure = text

    def report_failure(self, out, test, example, got):
        self._keep(example, f"expected:\n{example.want}got:\n{got}")

    def report_unexpected_exception(self, out, test, example, exc_info):
        # format_exception_only keeps the exception's __notes__ (where pyspark-web's install
        # note for the pandas APIs is) and leaves out the traceback.
        self._keep(example, "".join(traceback.format_exception_only(exc_info[0], exc_info[1])))


def _quote(*parts):
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def _server_objects(spark, global_temp):
    """What outlives a session on the server, as (kind, database, name) triples: databases,
    their tables, views and functions, and the global temporary views."""
    found = set()
    databases = [row[0] for row in spark.sql("SHOW DATABASES").collect()]
    for database in databases:
        found.add(("DATABASE", database, ""))
        for row in spark.sql(f"SHOW USER FUNCTIONS IN {_quote(database)}").collect():
            # Qualified (spark_catalog.db.name) for persistent functions; this session has
            # no temporary ones.
            found.add(("FUNCTION", database, row[0].rsplit(".", 1)[-1]))
    for database in [*databases, global_temp]:
        for table in spark.catalog.listTables(database):
            kind = "TABLE" if table.tableType in ("MANAGED", "EXTERNAL") else "VIEW"
            found.add((kind, database, table.name))
    return found


def _drop_new(spark, before, after, docstring):
    """Drop what a docstring created: the objects in ``after`` but not ``before`` whose name
    appears in the docstring. Returns the statements run, for the record."""
    text = docstring.lower()
    new = sorted(after - before)
    new_databases = {database for kind, database, _ in new if kind == "DATABASE"}
    # Objects first, then databases (CASCADE takes the objects inside new ones along).
    statements = [
        f"DROP {kind} IF EXISTS {_quote(database, name)}"
        for kind, database, name in new
        if kind != "DATABASE" and database not in new_databases and name.lower() in text
    ] + [
        f"DROP DATABASE IF EXISTS {_quote(database)} CASCADE"
        for database in sorted(new_databases)
        if database.lower() in text
    ]
    for statement in statements:
        spark.sql(statement).collect()
    return statements


def _unpersist_all(globs):
    """Unpersist every DataFrame the docstring left in its globals: cached data belongs to
    the server, not the session, and would change later docstrings' plans and storage levels."""
    from pyspark.sql import DataFrame

    for value in globs.values():
        if isinstance(value, DataFrame):
            try:
                value.unpersist()
            except Exception:
                pass  # a DataFrame that does not analyze (the docstring's point) was not cached


def _run_docstring(test, globs, flags, remote_url):
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(remote_url).create()
    test.globs = dict(globs, spark=spark)
    runner = _Recorder(optionflags=flags)
    began = time.perf_counter()
    try:
        result = runner.run(test, out=lambda text: None, clear_globs=False)
    finally:
        _unpersist_all(test.globs)
        test.globs.clear()
        spark.stop()
    return {
        "passed": result.failed == 0,
        "failures": result.failed,
        "examples": result.attempted,
        "first_failure": runner.first_failure,
        "seconds": round(time.perf_counter() - began, 3),
    }


# What a docstring needs in its examples to create something that outlives its session:
# a SQL statement (CREATE TABLE/VIEW/FUNCTION/DATABASE), a writer (saveAsTable, writeTo,
# writeStream.toTable), a global temporary view, or catalog.createTable. Only after those
# is the catalog compared: doing it after every docstring doubled the run time. Anything
# this misses shows in the run's report as left_behind.
MAY_CREATE = re.compile(r"\bsql\(|\.write|GlobalTempView|catalog\.create")


def run_module(name, remote_url, housekeeping, global_temp, part=(0, 1)):
    """The doctests of one module: {docstring name: result}, and the cleanup statements run.
    ``part`` (i, n) runs every n-th docstring from the i-th only, in name order."""
    importlib.import_module(name)
    target, flags = MODULES[name]
    module = importlib.import_module(target)
    globs = module.__dict__.copy()
    tests = [t for t in doctest.DocTestFinder().find(module, globs=globs) if t.examples]
    results, cleanups = {}, {}
    objects = _server_objects(housekeeping, global_temp)
    index, count = part
    for test in sorted(tests, key=lambda t: t.name)[index::count]:
        results[test.name] = _run_docstring(test, globs, flags, remote_url)
        if not MAY_CREATE.search("".join(example.source for example in test.examples)):
            continue
        after = _server_objects(housekeeping, global_temp)
        dropped = _drop_new(housekeeping, objects, after, test.docstring or "")
        if dropped:
            cleanups[test.name] = dropped
            after = _server_objects(housekeeping, global_temp)
        objects = after
    return results, cleanups


def run(remote_url, modules=None, part=(0, 1)):
    """Run the doctests of ``modules`` (default: all of MODULES) against ``remote_url``;
    ``part`` (i, n): only the i-th of n interleaved slices of each module's docstrings, for
    a caller that must return within a time limit (a browser driver's)."""
    import pyspark
    from pyspark.sql import SparkSession

    # A session of its own for looking at and cleaning the catalog; docstrings never see it.
    housekeeping = SparkSession.builder.remote(remote_url).create()
    global_temp = housekeeping.conf.get("spark.sql.globalTempDatabase")
    started = _server_objects(housekeeping, global_temp)
    report = {
        "remote": remote_url,
        "pyspark": pyspark.__version__,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "platform": sys.platform,
        "heavy_packages": sorted(
            m for m in ("numpy", "pandas", "pyarrow", "grpc") if _importable(m)
        ),
        # Objects already on the server: a docstring that creates one of these by name fails
        # (e.g. left by a run that was killed); the runner drops only what a run created.
        "found_at_start": sorted(map(list, started - {("DATABASE", "default", "")})),
        "modules": {},
        "docstrings": {},
        "cleanups": {},
    }
    began = time.perf_counter()
    try:
        for name in modules or MODULES:
            module_began = time.perf_counter()
            try:
                results, cleanups = run_module(name, remote_url, housekeeping, global_temp, part)
            except Exception:
                report["modules"][name] = {"error": traceback.format_exc()[-FAILURE_CHARS:]}
                continue
            for result in results.values():
                result["module"] = name
            report["docstrings"].update(results)
            report["cleanups"].update(cleanups)
            report["modules"][name] = {
                "docstrings": len(results),
                "passed": sum(r["passed"] for r in results.values()),
                "seconds": round(time.perf_counter() - module_began, 1),
            }
        # What the run left on the server that was not there before (must be nothing).
        report["left_behind"] = sorted(
            map(list, _server_objects(housekeeping, global_temp) - started)
        )
    finally:
        housekeeping.stop()
    report["seconds"] = round(time.perf_counter() - began, 1)
    report["docstrings_total"] = len(report["docstrings"])
    report["passed_total"] = sum(r["passed"] for r in report["docstrings"].values())
    return report


def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main(argv):
    if len(argv) < 2:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        return 2
    url, output, *modules = argv
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        print(f"unknown modules: {unknown}; known: {list(MODULES)}", file=sys.stderr)
        return 2
    report = run(url, modules or None)
    with open(output, "w") as file:
        json.dump(report, file, indent=1, sort_keys=True)
    for name, module in report["modules"].items():
        print(name, module.get("error") or f"{module['passed']}/{module['docstrings']}")
    print(f"{report['passed_total']}/{report['docstrings_total']} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
