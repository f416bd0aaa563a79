// Run a Python benchmark file inside Pyodide (Node), with pyspark-web from dist/.
//   node bench/pyodide_node.mjs bench/bench_arrow.py [ARGS...]   (ARGS become sys.argv[1:])
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { loadPyodide } = await import(join(root, "dist", "pyodide.mjs"));
const pyodide = await loadPyodide({ indexURL: join(root, "dist") + "/" });
await pyodide.loadPackage("pyspark-web");
pyodide.setStdout({ batched: (line) => console.log(line) });
pyodide.globals.set("__name__", "__main__");
pyodide.globals.set("_bench_argv", pyodide.toPy(process.argv.slice(2)));
pyodide.runPython("import sys; sys.argv = list(_bench_argv); del _bench_argv");
// A filename keeps the source in linecache: Python functions (UDFs) travel as source.
await pyodide.runPythonAsync(readFileSync(process.argv[2], "utf8"), { filename: process.argv[2] });
