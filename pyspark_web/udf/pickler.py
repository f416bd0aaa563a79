"""Pickles that load on another Python minor version than the one that wrote them.

cloudpickle writes functions as code objects, whose format changes with every Python minor
version, so its bytes load only where they were made. Here a function travels as its source
text plus its state (globals it uses, closure cells, defaults), and a class that is not
importable as its methods plus its other attributes. The stream tells the workers'
``builtins.eval`` to run ``loader.py``, whose functions rebuild them; everything else is
ordinary pickle (protocol 4), importable objects by reference, modules by name.
"""

import builtins
import dis
import io
import pickle
import sys
import types
from collections.abc import Iterator
from importlib import resources
from typing import Any

from pyspark_web.udf.source import FunctionNotPortable, check_syntax, describe, find_source

PROTOCOL = 4  # every Python 3 that Spark 4 runs reads it
_CLIENT = "%d.%d" % sys.version_info[:2]
_LOADER_SOURCE = resources.files(__package__).joinpath("loader.py").read_text()
_GLOBAL_OPS = {
    "LOAD_GLOBAL",
    "STORE_GLOBAL",
    "DELETE_GLOBAL",
    "LOAD_NAME",
    "LOAD_FROM_DICT_OR_GLOBALS",
}
_SKIP_CLASS_ATTRIBUTES = {
    "__dict__",
    "__weakref__",
    "__module__",
    "__qualname__",
    "__firstlineno__",
    "__static_attributes__",
    "_abc_impl",
}


class _LoaderClass:
    """Stands for ``loader.Loader`` on the workers: unpickling evaluates loader.py there."""

    def __reduce__(self) -> tuple[Any, ...]:
        bootstrap = (
            f"(lambda ns: exec({_LOADER_SOURCE!r}, ns) or ns['Loader'])"
            "({'__name__': 'pyspark_web_loader'})"
        )
        return builtins.eval, (bootstrap,)


_LOADER = _LoaderClass()


class _LoaderFunction:
    """``Loader.<name>`` on the workers. Pickle wants reduce callables to be callable."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any) -> Any:
        raise RuntimeError("runs on the Spark workers only")

    def __reduce__(self) -> tuple[Any, ...]:
        return getattr, (_LOADER, self.name)


_MAKE_FUNCTION = _LoaderFunction("function")
_SET_FUNCTION_STATE = _LoaderFunction("function_state")
_MAKE_CLASS = _LoaderFunction("cls")
_SET_CLASS_STATE = _LoaderFunction("class_state")


def importable(obj: Any) -> bool:
    """Whether pickle's by-name reference finds this very object (as cloudpickle decides:
    everything in ``__main__`` or defined inside a function travels by value)."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<locals>" in qualname:
        return False
    found: Any = sys.modules.get(module)
    if found is None:
        return False
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is obj


def _global_names(code: types.CodeType) -> Iterator[str]:
    for instruction in dis.get_instructions(code):
        if instruction.opname in _GLOBAL_OPS:
            yield instruction.argval
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


def _methods(cls: type) -> Iterator[types.FunctionType]:
    for value in vars(cls).values():
        for candidate in (
            value,
            getattr(value, "__func__", None),
            getattr(value, "fget", None),
            getattr(value, "fset", None),
        ):
            if isinstance(candidate, types.FunctionType):
                yield candidate


class PortablePickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, worker: str) -> None:
        super().__init__(file, protocol=PROTOCOL)
        self.worker = worker
        # One snapshot of the globals each source module's functions use, shared by them,
        # keyed by the id of the module's globals dict.
        self._namespaces: dict[int, tuple[dict[str, Any], set[str]]] = {}

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.ModuleType):
            if obj.__name__ == "__main__":
                raise FunctionNotPortable(
                    "A function refers to the module __main__ itself, "
                    "which the Spark workers do not have"
                )
            # With a fromlist, __import__ returns the submodule itself.
            return builtins.__import__, (obj.__name__, None, None, ("__name__",), 0)
        if isinstance(obj, types.FunctionType) and not importable(obj):
            return self._reduce_function(obj)
        if isinstance(obj, type) and not importable(obj):
            return self._reduce_class(obj)
        # What a class body wraps its methods in (plain pickle refuses them).
        if isinstance(obj, (staticmethod, classmethod)):
            return type(obj), (obj.__func__,)
        if isinstance(obj, property):
            return property, (obj.fget, obj.fset, obj.fdel, obj.__doc__)
        return NotImplemented

    # ------------------------------------------------------------ functions

    def _reduce_function(self, func: types.FunctionType) -> tuple[Any, ...]:
        source = find_source(func, self.worker)
        check_syntax(func, source, self.worker)
        code = func.__code__
        static = (
            func.__name__,
            code.co_name,
            func.__qualname__,
            func.__module__,
            source.filename,
            source.lineno,
            source.text,
            source.raw,
            source.is_lambda,
            code.co_freevars,
            _CLIENT,
        )
        closure = {
            name: cell.cell_contents
            for name, cell in zip(code.co_freevars, func.__closure__ or ())
            if _cell_filled(cell)
        }
        state = (closure, func.__defaults__, func.__kwdefaults__, func.__doc__, dict(func.__dict__))
        return (
            _MAKE_FUNCTION,
            (static, self._namespace(func)),
            state,
            None,
            None,
            _SET_FUNCTION_STATE,
        )

    def _namespace(self, func: types.FunctionType) -> dict[str, Any]:
        """The globals a function (and what it reaches in the same module) uses, by value."""
        module_globals = func.__globals__
        needed: set[str] = set()
        self._collect(func, module_globals, needed, set())
        known = self._namespaces.get(id(module_globals))
        if known is not None and needed <= known[1]:
            return known[0]
        # A fresh dict when names are missing: the old one may already be in the stream.
        names = needed | (known[1] if known else set())
        snapshot = {"__name__": module_globals.get("__name__", "__main__")}
        snapshot.update(
            (name, module_globals[name]) for name in sorted(names) if name in module_globals
        )
        self._namespaces[id(module_globals)] = (snapshot, names)
        return snapshot

    def _collect(
        self, obj: Any, module_globals: dict[str, Any], needed: set[str], seen: set[int]
    ) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, type):
            for method in _methods(obj):
                self._collect(method, module_globals, needed, seen)
            return
        if (
            not isinstance(obj, types.FunctionType)
            or obj.__globals__ is not module_globals
            or importable(obj)
        ):
            return
        for name in _global_names(obj.__code__):
            if name in module_globals:
                needed.add(name)
                self._collect(module_globals[name], module_globals, needed, seen)
        for cell in obj.__closure__ or ():
            if _cell_filled(cell):
                self._collect(cell.cell_contents, module_globals, needed, seen)

    # ------------------------------------------------------------ classes

    def _reduce_class(self, cls: type) -> tuple[Any, ...]:
        static = (cls.__name__, cls.__qualname__, cls.__module__)
        attributes = {
            name: value for name, value in vars(cls).items() if name not in _SKIP_CLASS_ATTRIBUTES
        }
        return (
            _MAKE_CLASS,
            (static, type(cls), cls.__bases__),
            attributes,
            None,
            None,
            _SET_CLASS_STATE,
        )


def _cell_filled(cell: Any) -> bool:
    try:
        _ = cell.cell_contents  # an empty cell raises ValueError
    except ValueError:
        return False
    return True


def dumps(obj: Any, worker: str) -> bytes:
    """Pickle ``obj`` (a function, a class, or a tuple holding them) for Python ``worker``."""
    buffer = io.BytesIO()
    try:
        PortablePickler(buffer, worker).dump(obj)
    except FunctionNotPortable:
        raise
    except RecursionError:
        raise FunctionNotPortable(
            f"{_what(obj)} refers to itself through too many levels to be sent as source to "
            f"Python {worker} workers; simplify what it captures"
        ) from None
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        func = obj[0] if isinstance(obj, tuple) and obj else obj
        if callable(func) and not isinstance(func, (types.FunctionType, type)):
            raise FunctionNotPortable(
                f"The function {getattr(func, '__qualname__', repr(func))!r} is not Python code "
                f"(a built-in or C function), so it has no source to send to the Spark workers "
                f"(Python {worker}), and pickle cannot refer to it by name: {error}. Use a "
                "function written in Python (def or lambda), or one of a module that the "
                "workers have too."
            ) from None
        raise FunctionNotPortable(
            f"{_what(func)} captures something that cannot be sent to the Spark workers "
            f"(Python {worker}): {error}. Create such objects inside the function, or pass "
            "plain data (numbers, strings, lists, dicts) instead."
        ) from None
    return buffer.getvalue()


def _what(func: Any) -> str:
    if isinstance(func, types.FunctionType):
        return f"The Python function {describe(func)}"
    return f"The Python object {getattr(func, '__qualname__', type(func).__qualname__)!r}"
