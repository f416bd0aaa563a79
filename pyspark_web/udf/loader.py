"""What rebuilds portable functions and classes on the Spark workers.

The pickle that ``pickler.py`` writes carries this file's text and has the workers'
``builtins.eval`` run it, so it must work there with nothing but the standard library: the
server has no pyspark-web. Keep it to syntax and APIs of Python 3.10, the oldest worker
Python that Spark 4 supports. Nothing here runs on the client.
"""

import linecache
import sys
import types

_SCOPE = "__pyspark_web_scope__"


def _register_lines(filename, lineno, text):
    # Tracebacks on the workers then quote the user's own lines, at their own numbers.
    # Only entries made here are extended; a source Python already has stays as it is.
    ours = linecache.__dict__.setdefault("_portable_function_sources", set())
    if filename in linecache.cache and filename not in ours:
        return
    ours.add(filename)
    entry = linecache.cache.get(filename)
    lines = list(entry[2]) if entry else []
    new = text.splitlines(True)
    if new and not new[-1].endswith("\n"):
        new[-1] += "\n"
    end = lineno - 1 + len(new)
    lines.extend(["\n"] * (end - len(lines)))
    lines[lineno - 1 : end] = new
    # mtime None: linecache.checkcache leaves the entry alone.
    linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)


def _child(code, name):
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == name:
            return const
    raise LookupError("no code object named %r" % name)


class Loader:
    @staticmethod
    def function(static, namespace):
        (
            name,
            code_name,
            qualname,
            module,
            filename,
            lineno,
            text,
            raw,
            is_lambda,
            freevars,
            client,
        ) = static
        # A function with free variables compiles inside scopes that provide them: a class
        # for __class__ (zero-argument super()), a function for the others.
        others = [v for v in freevars if v != "__class__"]
        headers = []
        if others:
            headers.append("def %s(%s):\n" % (_SCOPE, ", ".join(others)))
        if "__class__" in freevars:
            headers.append(" " * len(headers) + "class %s:\n" % _SCOPE)
        if is_lambda:
            body = " " * len(headers) + "(" + text + ")\n"
        elif headers:
            body = raw  # keeps its indentation, which is deeper than the headers'
        else:
            body = text
        padding = "\n" * max(lineno - 1 - len(headers), 0)
        source = padding + "".join(headers) + body
        worker = "%d.%d" % sys.version_info[:2]
        try:
            code = compile(source, filename, "exec", dont_inherit=True)
        except SyntaxError as error:
            raise SyntaxError(
                "Python %s on the Spark workers cannot compile the function %r from %s, "
                "line %d, written for Python %s: %s. Rewrite it for Python %s, or run the "
                "workers on Python %s."
                % (worker, qualname, filename, lineno, client, error.msg, worker, client)
            ) from None
        for _ in headers:
            code = _child(code, _SCOPE)
        code = _child(code, code_name)
        cells = tuple(types.CellType() for _ in code.co_freevars)
        function = types.FunctionType(code, namespace, name, None, cells)
        function.__qualname__ = qualname
        function.__module__ = module
        _register_lines(filename, lineno, text if is_lambda or not headers else raw)
        return function

    @staticmethod
    def function_state(function, state):
        closure, defaults, kwdefaults, doc, attributes = state
        for name, cell in zip(function.__code__.co_freevars, function.__closure__ or ()):
            if name in closure:
                cell.cell_contents = closure[name]
        function.__defaults__ = defaults
        function.__kwdefaults__ = kwdefaults
        function.__doc__ = doc
        function.__dict__.update(attributes)

    @staticmethod
    def cls(static, metaclass, bases):
        name, qualname, module = static
        return metaclass(name, bases, {"__module__": module, "__qualname__": qualname})

    @staticmethod
    def class_state(made, attributes):
        # The client left out what a class makes for itself (__dict__, __weakref__, ...).
        # Methods that use zero-argument super() get this class in their __class__ cell
        # from their own state: the pickle refers to the class made above.
        for name, value in attributes.items():
            setattr(made, name, value)
