// One Pyodide interpreter answering `make bench-cpu` (bench/cpu_bench.py): reads one
// JSON line {"src": ...} per run, runs it in a fresh globals dict, and prints
// {"out": <what it printed>} (or {"error": ...}) as one line.
import { loadPyodide } from "pyodide";
import readline from "node:readline";

const py = await loadPyodide();
let out = [];
py.setStdout({ batched: (s) => out.push(s) });
console.log(JSON.stringify({ ready: py.version }));
for await (const line of readline.createInterface({ input: process.stdin })) {
  out = [];
  const ns = py.globals.get("dict")();
  try {
    py.runPython(JSON.parse(line).src, { globals: ns });
    console.log(JSON.stringify({ out: out.join("\n") }));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e).slice(-2000) }));
  } finally {
    ns.destroy();
  }
}
