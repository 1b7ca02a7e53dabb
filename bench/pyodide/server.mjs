// A minimal Pyodide-in-Node execution service, written only as a benchmark
// baseline (the seeds' original design): POST /execute {"code"} -> {"success",
// "stdout", "stderr", "error"}.
//   node server.mjs PORT warm    one interpreter shared by every request
//   node server.mjs PORT fresh   a new interpreter (loadPyodide) per request
import http from "node:http";
import { loadPyodide } from "pyodide";

const port = Number(process.argv[2] || 9000);
const mode = process.argv[3] || "warm";
const shared = mode === "warm" ? await loadPyodide() : null;

async function run(code) {
  const py = shared ?? (await loadPyodide());
  let out = "", err = "";
  py.setStdout({ batched: (s) => { out += s + "\n"; } });
  py.setStderr({ batched: (s) => { err += s + "\n"; } });
  try {
    py.runPython(code);
    return { success: true, stdout: out, stderr: err, error: null };
  } catch (e) {
    return { success: false, stdout: out, stderr: err, error: String(e) };
  }
}

http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => { body += c; });
  req.on("end", async () => {
    if (req.url === "/health") { res.end('{"status":"healthy"}'); return; }
    try {
      const r = await run(JSON.parse(body).code);
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify(r));
    } catch (e) {
      res.statusCode = 400;
      res.end(JSON.stringify({ error: String(e) }));
    }
  });
}).listen(port, "127.0.0.1", () => console.error(`pyodide ${mode} on ${port}`));
