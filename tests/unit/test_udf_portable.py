"""pyspark_web/udf without a server: functions pickled as source load and run on every other
CPython minor version of the machine (pyenv), with nothing of pyspark-web there; the same
minor gets upstream's cloudpickle bytes; what cannot travel gets an error that names the
function, both versions and the fixes."""

import pickle
import subprocess
import sys
import textwrap

import pytest
from helpers import pyenv_python

from pyspark_web.udf import FunctionNotPortable, serialize, set_worker_python
from pyspark_web.udf.pickler import dumps

pytestmark = pytest.mark.unit

CLIENT = "%d.%d" % sys.version_info[:2]
OTHERS = [v for v in ("3.10", "3.12", "3.13") if v != CLIENT]

# A user's script: run as __main__ from a file, as notebooks and scripts are.
USER_CODE = '''
import functools
import math

RATES = {"EUR": 1.0, "USD": 0.5}

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def is_even(n):
    return True if n == 0 else is_odd(n - 1)

def is_odd(n):
    return False if n == 0 else is_even(n - 1)

def make_adder(k):
    def add(x, *, extra=0):
        return x + k + extra + fib(5)
    return add

def counter():
    def count_down(n):
        return 0 if n == 0 else 1 + count_down(n - 1)
    return count_down

def shouting(function):
    @functools.wraps(function)
    def wrapper(*args):
        return str(function(*args)).upper() + "!"
    return wrapper

@shouting
def greet(name, greeting="hello"):
    """Greets."""
    return f"{greeting} {name}"

class Base:
    def tag(self):
        return "base"

class Handler(Base):
    LIMIT = 3

    def eval(self, x):
        for i in range(min(x, Handler.LIMIT)):
            yield i, super().tag(), self.scale(i)

    @staticmethod
    def scale(i):
        return round(math.sqrt(i) * RATES["USD"], 3)

    @property
    def name(self):
        return type(self).__name__

pair = [lambda x: x + 1, lambda x: x * 100]
nested = lambda x: (lambda y: y * y)(x) + 1
with_defaults = lambda x, y=RATES["EUR"], *, z=2: (x + y) * z
'''

# name -> (the callable, its arguments); each is called here and on the other Python.
CALLS = {
    "first_lambda": ("pair[0]", (1,)),
    "second_lambda": ("pair[1]", (1,)),
    "nested_lambdas": ("nested", (3,)),
    "recursion_through_globals": ("fib", (10,)),
    "mutual_recursion": ("is_even", (7,)),
    "closure_keyword_only": ("make_adder(5)", (1,)),
    "recursive_closure": ("counter()", (6,)),
    "user_decorator_and_defaults": ("greet", ("spark",)),
    "lambda_defaults": ("with_defaults", (1,)),
    "partial": ("functools.partial(fib, 12)", ()),
    "builtin": ("len", ("abcd",)),
}


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "notebook.py"
    path.write_text(USER_CODE)
    namespace = {"__name__": "__main__"}
    exec(compile(USER_CODE, str(path), "exec"), namespace)
    return namespace


def load_elsewhere(version, payloads, code):
    """Unpickle payloads in another CPython (without pyspark-web) and run ``code``."""
    python = pyenv_python(version)
    if python is None:
        pytest.fail(
            f"CPython {version} is missing from pyenv; the portable path is tested against it"
        )
    program = (
        "import pickle, sys\npayloads = pickle.loads(sys.stdin.buffer.read())\n"
        + textwrap.dedent(code)
    )
    result = subprocess.run(
        [str(python), "-I", "-c", program],
        input=pickle.dumps(payloads, protocol=4),
        capture_output=True,
        timeout=60,
    )
    return result


@pytest.mark.parametrize("version", OTHERS)
def test_functions_run_on_another_minor_version(user, version):
    functions = {name: eval(expr, user) for name, (expr, _) in CALLS.items()}
    expected = {name: repr(functions[name](*args)) for name, (_, args) in CALLS.items()}
    payloads = {name: (dumps(functions[name], version), args) for name, (_, args) in CALLS.items()}
    result = load_elsewhere(
        version,
        payloads,
        """
        import json
        out = {}
        for name, (payload, args) in payloads.items():
            out[name] = repr(pickle.loads(payload)(*args))
        assert "pyspark_web" not in sys.modules
        print(json.dumps(out))
    """,
    )
    assert result.returncode == 0, result.stderr.decode()
    import json

    assert json.loads(result.stdout) == expected


@pytest.mark.parametrize("version", OTHERS)
def test_udtf_class_with_super_static_and_property(user, version):
    handler = user["Handler"]
    expected = repr((list(handler().eval(5)), handler().name, handler.__name__))
    result = load_elsewhere(
        version,
        {"cls": dumps(handler, version)},
        """
        cls = pickle.loads(payloads["cls"])
        print(repr((list(cls().eval(5)), cls().name, cls.__name__)))
    """,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == expected


def test_metadata_survives(user):
    greet = pickle.loads(dumps(user["greet"], CLIENT))
    assert (greet.__name__, greet.__doc__, greet("ada")) == ("greet", "Greets.", "HELLO ADA!")
    assert greet.__wrapped__("ada", "hi") == "hi ada"


def test_return_type_pair_like_upstream(user):
    # Connect pickles (function, return type) for UDFs.
    from pyspark.sql.types import LongType

    func, return_type = pickle.loads(dumps((user["fib"], LongType()), "3.12"))
    assert (func(9), return_type) == (34, LongType())


class FakeClient:
    """What serialize needs of a SparkConnectClient: something to key the version on."""


@pytest.mark.parametrize("kind", ["function", "class"])
def test_same_minor_is_upstream_cloudpickle_byte_for_byte(user, kind):
    from pyspark.serializers import CloudPickleSerializer

    client = FakeClient()
    set_worker_python(client, CLIENT)
    obj = (user["fib"], "long") if kind == "function" else user["Handler"]
    command, declared = serialize(client, obj, CLIENT)
    assert declared == CLIENT
    assert command == CloudPickleSerializer().dumps(obj)


def test_other_minor_declares_the_workers_version(user):
    client = FakeClient()
    set_worker_python(client, "3.12")
    command, declared = serialize(client, (user["fib"], "long"), CLIENT)
    assert declared == "3.12"
    assert pickle.loads(command)[0](10) == 55


def test_declared_version_is_checked():
    with pytest.raises(ValueError, match="like '3.11', not '311'"):
        set_worker_python(FakeClient(), "311")


def test_no_source_names_the_function_and_the_fixes():
    namespace = {"__name__": "__main__"}
    exec(
        "square = lambda x: x * x", namespace
    )  # no file: what runPythonAsync does without a filename
    with pytest.raises(FunctionNotPortable) as error:
        dumps(namespace["square"], "3.12")
    message = str(error.value)
    assert "'lambda' (<string>, line 1)" in message
    assert f"the Spark workers run Python 3.12, this client runs Python {CLIENT}" in message
    assert "pyodide.runPythonAsync(code, {filename: 'main.py'})" in message


# except* (Python 3.11+): a function that Python 3.10 workers cannot compile.
EXCEPT_STAR = (
    "def gather(xs):\n"
    "    total = 0\n"
    "    try:\n"
    "        total = sum(xs)\n"
    "    except* ValueError:\n"
    "        total = -1\n"
    "    return total\n"
)


def test_syntax_the_workers_cannot_compile_names_both_versions(tmp_path):
    path = tmp_path / "cell.py"
    path.write_text(EXCEPT_STAR)
    namespace = {"__name__": "__main__"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    with pytest.raises(FunctionNotPortable) as error:
        dumps(namespace["gather"], "3.10")
    message = str(error.value)
    assert "'gather'" in message and "Python 3.10 cannot compile" in message
    assert f"the Spark workers run Python 3.10, this client runs Python {CLIENT}" in message


def test_workers_name_the_function_when_they_cannot_compile_it(tmp_path):
    # The client's check is ast's best effort; what slips through is named on the workers.
    path = tmp_path / "cell.py"
    path.write_text(EXCEPT_STAR)
    namespace = {"__name__": "__main__"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    payload = dumps(namespace["gather"], "3.13")  # declared newer than the Python loading it
    result = load_elsewhere("3.10", {"f": payload}, "pickle.loads(payloads['f'])")
    stderr = result.stderr.decode()
    assert result.returncode != 0
    assert "Python 3.10 on the Spark workers cannot compile the function 'gather'" in stderr
    assert f"written for Python {CLIENT}" in stderr


def test_unpicklable_capture_names_the_function(tmp_path):
    import threading

    path = tmp_path / "cell.py"
    path.write_text("def locked(x):\n    with LOCK:\n        return x\n")
    namespace = {"__name__": "__main__", "LOCK": threading.Lock()}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    with pytest.raises(
        FunctionNotPortable, match=r"'locked' .* captures something that cannot be sent"
    ):
        dumps(namespace["locked"], "3.12")


def test_workers_quote_the_users_lines_in_tracebacks(user, tmp_path):
    path = tmp_path / "cell.py"
    path.write_text("\n\ndef risky(x):\n    return 10 // x  # the user's line\n")
    namespace = {"__name__": "__main__"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    result = load_elsewhere(
        "3.12", {"f": dumps(namespace["risky"], "3.12")}, "pickle.loads(payloads['f'])(0)"
    )
    stderr = result.stderr.decode()
    assert f'File "{path}", line 4, in risky' in stderr
    assert "return 10 // x  # the user's line" in stderr


def test_a_file_run_again_under_the_same_name_uses_its_new_source(tmp_path):
    # A page that runs runPythonAsync(code, {filename: "main.py"}) twice with other code.
    import linecache

    name = str(tmp_path / "main.py")
    functions = []
    for factor in (2, 3):
        code = f"def scale(x):\n    return x * {factor}\n"
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        namespace = {"__name__": "__main__"}
        exec(compile(code, name, "exec"), namespace)
        functions.append(pickle.loads(dumps(namespace["scale"], CLIENT)))
    assert [f(10) for f in functions] == [20, 30]


def test_a_c_function_pickle_cannot_name_is_refused_by_name():
    import threading

    with pytest.raises(FunctionNotPortable) as error:
        dumps(threading.Lock().acquire, "3.12")
    message = str(error.value)
    assert "'lock.acquire' is not Python code (a built-in or C function)" in message
    assert "Use a function written in Python (def or lambda)" in message
