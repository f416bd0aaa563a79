// The worker of worker.html. With ?jspi=0 JSPI is hidden before Pyodide loads and Python is
// entered with runPython (synchronously): on a page that is not cross-origin isolated,
// pyspark-web then blocks with synchronous XHR. Otherwise runPythonAsync (JSPI).
const jspi = new URLSearchParams(self.location.search).get("jspi") !== "0";
if (!jspi) {
  delete WebAssembly.Suspending;
  delete WebAssembly.promising;
  delete WebAssembly.Suspender;
}

async function boot() {
  const dist = new URL("/dist/", self.location.href).href;
  const { loadPyodide } = await import(dist + "pyodide.mjs");
  const pyodide = await loadPyodide({ indexURL: dist });
  await pyodide.loadPackage("pyspark-web");
  return pyodide;
}

const booted = boot();
booted.then(
  (pyodide) => self.postMessage({ version: pyodide.version, jspi }),
  (error) => self.postMessage({ error: String(error) }),
);

self.onmessage = async ({ data: { id, code } }) => {
  try {
    const pyodide = await booted;
    const value = jspi ? await pyodide.runPythonAsync(code) : pyodide.runPython(code);
    self.postMessage({ id, value });
  } catch (error) {
    self.postMessage({ id, error: String(error) });
  }
};
