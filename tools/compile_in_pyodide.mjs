// Compile, with Pyodide's own Python, the modules that the first query imports (no CPython
// of Pyodide's version exists on the build machines). DIR holds the unpacked wheels of
// pyspark-web and its dependencies; each module imported from DIR gets
// __pycache__/NAME.cpython-3XX.pyc next to it, unchecked-hash: Python uses it without
// comparing the source's mtime, which unpacking a wheel does not keep.
//   node tools/compile_in_pyodide.mjs DIR
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { loadPyodide } = await import(join(root, "node_modules", "pyodide", "pyodide.mjs"));
const pyodide = await loadPyodide({ indexURL: join(root, "node_modules", "pyodide") + "/" });
pyodide.FS.mkdir("/wheels");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: resolve(process.argv[2]) }, "/wheels");
pyodide.setStdout({ batched: (line) => console.log(line) });
pyodide.runPython(`
import importlib, py_compile, sys

sys.path.insert(0, "/wheels")
# What a notebook's first query imports: the Connect session and functions, the grpc-web
# channel, the Arrow backend and the notebook integration.
for name in (
    "pyspark.sql.connect.session",
    "pyspark.sql.connect.functions",
    "pyspark.sql.connect.client.reattach",
    "pyspark.sql.conversion",
    "pyspark_web.builder",
    "pyspark_web.channel",
    "pyspark_web.arrow.backend",
    "pyspark_web.notebook",
):
    importlib.import_module(name)
compiled = 0
for module in list(sys.modules.values()):
    source = getattr(module, "__file__", None) or ""
    if source.startswith("/wheels/") and source.endswith(".py"):
        py_compile.compile(
            source, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        compiled += 1
print(f"compiled {compiled} modules with Python {sys.version.split()[0]} ({sys.implementation.cache_tag})")
`);
