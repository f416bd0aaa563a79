// The worker of worker.html. Python is entered with runPython (synchronously) on purpose:
// without JSPI, urllib3 then blocks with synchronous XHR, or with its streaming helper
// worker when the page is cross-origin isolated.
const params = new URLSearchParams(self.location.search);
if (params.get("jspi") === "0") {
  delete WebAssembly.Suspending;
  delete WebAssembly.promising;
  delete WebAssembly.Suspender;
}
try {
  const dist = new URL("/dist/", self.location.href).href;
  const { loadPyodide } = await import(dist + "pyodide.mjs");
  const pyodide = await loadPyodide({ indexURL: dist });
  await pyodide.loadPackage("pyspark-web");
  const result = pyodide.runPython(`
import json
from pyspark.sql import SparkSession
from pyspark_web.transport import blocking_mode

spark = SparkSession.builder.remote("${params.get("url")}").getOrCreate()
ids = [r.id for r in spark.range(70000).collect()]
shown = spark.createDataFrame([(1, "a")], "x int, y string")._show_string()
spark.stop()
json.dumps({"mode": blocking_mode(), "rows": len(ids), "last": ids[-1], "show": shown})
`);
  self.postMessage(JSON.parse(result));
} catch (error) {
  self.postMessage({ error: String(error) });
}
