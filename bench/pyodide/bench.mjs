// Pyodide baseline for rlmbox_bench: prints one JSON line of timings.
// Usage: node bench.mjs [reps]
import { loadPyodide } from "pyodide";

const reps = Number(process.argv[2] || 5);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

let t = now();
const py = await loadPyodide();
const loadMs = now() - t;

const passMs = [];
for (let i = 0; i < 200; i++) {
  t = now();
  py.runPython("pass");
  passMs.push(now() - t);
}
const cpuMs = [];
for (let i = 0; i < reps; i++) {
  t = now();
  py.runPython("sum(i*i for i in range(10**6))");
  cpuMs.push(now() - t);
}
console.log(JSON.stringify({
  version: py.version, load_ms: loadMs, run_pass_p50_ms: median(passMs), cpu_ms: median(cpuMs),
}));
