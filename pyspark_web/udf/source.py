"""The source text of a Python function, as the workers will compile it.

cloudpickle sends code objects, which only load on the client's own Python minor version.
Source text loads on any version that can compile it. This module finds that text for a
``def`` (without its decorators) or for one lambda among several on a line, and checks it
against the syntax level of the workers' Python.
"""

import ast
import linecache
import sys
import textwrap
import types
from dataclasses import dataclass


class FunctionNotPortable(Exception):
    """A Python function cannot be sent to workers that run another Python version."""


@dataclass(frozen=True)
class FunctionSource:
    text: str  # dedented: a ``def`` statement, or a lambda expression
    raw: str  # as in the file, indented as there (what a nested def compiles in)
    filename: str
    lineno: int  # of ``text``'s first line in ``filename``
    is_lambda: bool


def describe(func: types.FunctionType) -> str:
    code = func.__code__
    where = f"{code.co_filename}, line {code.co_firstlineno}"
    name = func.__qualname__ if func.__name__ != "<lambda>" else "lambda"
    return f"'{name}' ({where})"


def _versions(worker: str) -> str:
    client = "%d.%d" % sys.version_info[:2]
    return f"the Spark workers run Python {worker}, this client runs Python {client}"


def _no_source(func: types.FunctionType, worker: str, why: str) -> FunctionNotPortable:
    return FunctionNotPortable(
        f"Cannot send the Python function {describe(func)} to the Spark workers: {why}. "
        f"It has to travel as source code because {_versions(worker)}. Fixes: define the "
        "function in a module or notebook cell whose source Python keeps (in Pyodide, run "
        "the code with pyodide.runPythonAsync(code, {filename: 'main.py'})), or run the "
        f"client on Python {worker}, or run the workers on this client's Python version."
    )


# Parsed files by name, with linecache's list of lines they were parsed from: a file run
# again under the same name (a page's "main.py") gets a new list there.
_trees: dict[str, tuple[list[str], ast.Module]] = {}


def _parse(filename: str, lines: list[str]) -> ast.Module | None:
    cached = _trees.get(filename)
    tree = cached[1] if cached is not None and cached[0] is lines else None
    if tree is None:
        # Pyodide and notebooks allow top-level await in what they run.
        flags = ast.PyCF_ONLY_AST | getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
        try:
            tree = compile("".join(lines), filename, "exec", flags, dont_inherit=True)
        except (SyntaxError, ValueError):
            return None
        if len(_trees) > 64:
            _trees.clear()
        _trees[filename] = (lines, tree)
    return tree


def _segment(lines: list[str], node: ast.AST) -> str:
    """The exact text of a node (column offsets count UTF-8 bytes)."""
    first, last = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
    chunk = [line.encode() for line in lines[first : last + 1]]
    chunk[-1] = chunk[-1][: node.end_col_offset]  # type: ignore[attr-defined]
    chunk[0] = chunk[0][node.col_offset :]  # type: ignore[attr-defined]
    return b"".join(chunk).decode()


def _arg_names(args: ast.arguments) -> tuple[str, ...]:
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    return (*positional, *(a.arg for a in args.kwonlyargs))


def _code_arg_names(code: types.CodeType) -> tuple[str, ...]:
    return code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]


def _span_contains(node: ast.AST, line: int, column: int) -> bool:
    start = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
    end = (node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
    return start <= (line, column) < end


def _pick_lambda(code: types.CodeType, candidates: list[ast.Lambda]) -> ast.Lambda | None:
    wanted = _code_arg_names(code)
    candidates = [node for node in candidates if _arg_names(node.args) == wanted]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    positions = getattr(code, "co_positions", None)  # Python 3.11+
    if positions is None:
        return None
    points = [
        (line, column)
        for line, _, column, _ in positions()
        if line is not None and column is not None
    ]

    # The lambda that holds most of this code's instructions; of equals, the smallest
    # (a lambda inside another holds all of its own instructions, as the outer one does).
    def rank(node: ast.Lambda) -> tuple[int, int, int]:
        held = sum(_span_contains(node, *point) for point in points)
        return (-held, node.end_lineno - node.lineno, node.end_col_offset - node.col_offset)  # type: ignore[operator]

    best = sorted(candidates, key=rank)
    return best[0] if rank(best[0])[0] < 0 else None


def find_source(func: types.FunctionType, worker: str) -> FunctionSource:
    code = func.__code__
    filename = code.co_filename
    lines = linecache.getlines(filename, func.__globals__)
    if not lines:
        raise _no_source(func, worker, f"Python has no source for '{filename}'")
    tree = _parse(filename, lines)
    if tree is None:
        raise _no_source(func, worker, f"the source of '{filename}' that Python has does not parse")
    is_lambda = code.co_name == "<lambda>"
    if is_lambda:
        lambdas = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno
        ]
        node = _pick_lambda(code, lambdas)
        if node is None:
            raise _no_source(
                func,
                worker,
                f"line {code.co_firstlineno} of its source holds {len(lambdas)} lambdas and this "
                "Python cannot tell which one it is (give it a name with def)",
            )
        text = _segment(lines, node)
        return FunctionSource(text, text, filename, node.lineno, True)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == code.co_name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if first == code.co_firstlineno:
                # From the def line on: the decorators already ran on the client.
                raw = "".join(lines[node.lineno - 1 : node.end_lineno])
                return FunctionSource(textwrap.dedent(raw), raw, filename, node.lineno, False)
    raise _no_source(
        func,
        worker,
        f"its definition is not in the source Python has for '{filename}' (was the file changed?)",
    )


def check_syntax(func: types.FunctionType, source: FunctionSource, worker: str) -> None:
    """Refuse what the workers' Python cannot compile, naming both versions."""
    major, minor = (int(part) for part in worker.split("."))
    text = f"({source.text})" if source.is_lambda else source.text
    try:
        ast.parse(text, feature_version=(major, minor))
    except SyntaxError as error:
        raise FunctionNotPortable(
            f"The Python function {describe(func)} uses syntax that Python {worker} cannot "
            f"compile ({error.msg}); {_versions(worker)}. Rewrite it for Python {worker}, or "
            "run the workers on this client's Python version."
        ) from None
