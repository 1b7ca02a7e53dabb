// rlmbox guest shim: a WASI reactor around libpython.
//
// The host talks to the guest through four exports and one import:
//   rlmbox_init()                   run once under Wizer at build time: starts the
//                                   interpreter and imports the runner, so every
//                                   instance starts from that snapshot.
//   rlmbox_alloc(size) -> ptr       guest memory for a request the host writes.
//   rlmbox_call(op, ptr, len) -> i64  hands the request to runner.entry(op, data),
//                                   frees it, and returns (result_ptr << 32) | len
//                                   of the reply bytes (valid until the next call),
//                                   or -1 when the runner itself failed.
//   rlmbox_interrupt()              called by the host (from its deadline callback)
//                                   to ask the running cell to stop: it only sets
//                                   CPython's async-signal-safe interrupt flags.
//   import rlmbox.host_call(req, req_len, resp, resp_cap) -> i64
//                                   the host door (llm_query & co). Returns the reply
//                                   length; when that exceeds resp_cap the reply
//                                   stays pending on the host and is fetched by
//                                   calling again with req == NULL. Negative on error.
//
// Everything the host reads back is validated by the host: this file is
// untrusted from the host's point of view.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(#name))) __attribute__((used))

__attribute__((import_module("rlmbox"), import_name("host_call"))) extern int64_t
rlmbox_host_call(const void *req, uint32_t req_len, void *resp, uint32_t resp_cap);

static PyObject *g_entry;       // runner.entry(op, memoryview) -> bytes
static PyObject *g_last_result; // keeps the last reply alive for the host to read

// ---- _rlmbox: the builtin module the runner uses to reach the host door ----

static PyObject *door_host_call(PyObject *self, PyObject *arg) {
  (void)self;
  Py_buffer req;
  if (PyObject_GetBuffer(arg, &req, PyBUF_SIMPLE) != 0) return NULL;
  if (req.len > UINT32_MAX) {
    PyBuffer_Release(&req);
    PyErr_SetString(PyExc_ValueError, "host call request too large");
    return NULL;
  }
  const Py_ssize_t first_cap = 64 * 1024;
  PyObject *out = PyBytes_FromStringAndSize(NULL, first_cap);
  if (out == NULL) {
    PyBuffer_Release(&req);
    return NULL;
  }
  int64_t n = rlmbox_host_call(req.buf, (uint32_t)req.len, PyBytes_AS_STRING(out),
                               (uint32_t)first_cap);
  PyBuffer_Release(&req);
  if (n < 0) {
    Py_DECREF(out);
    PyErr_Format(PyExc_RuntimeError, "host call refused by the sandbox (code %lld)",
                 (long long)n);
    return NULL;
  }
  if (n > first_cap) {
    Py_DECREF(out);
    if (n > PY_SSIZE_T_MAX) return PyErr_NoMemory();
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (out == NULL) return NULL;
    int64_t m = rlmbox_host_call(NULL, 0, PyBytes_AS_STRING(out), (uint32_t)n);
    if (m != n) {
      Py_DECREF(out);
      PyErr_SetString(PyExc_RuntimeError, "host call reply lost");
      return NULL;
    }
    return out;
  }
  if (_PyBytes_Resize(&out, (Py_ssize_t)n) != 0) return NULL;
  return out;
}

static PyMethodDef door_methods[] = {
    {"host_call", door_host_call, METH_O,
     "host_call(request: bytes) -> bytes: one call through the sandbox's host door."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef door_module = {
    PyModuleDef_HEAD_INIT, "_rlmbox", "The rlmbox host door.", -1, door_methods,
};

static PyObject *door_init(void) { return PyModule_Create(&door_module); }

// ---- exports ----

EXPORT(rlmbox_init) void rlmbox_init(void) {
  if (PyImport_AppendInittab("_rlmbox", door_init) != 0) abort();

  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  config.site_import = 0;
  config.write_bytecode = 0;
  config.install_signal_handlers = 1;  // rlmbox_interrupt relies on a SIGINT handler
  config.buffered_stdio = 0;
  config.module_search_paths_set = 1;
  PyStatus status = PyConfig_SetString(&config, &config.program_name, L"python3");
  if (!PyStatus_Exception(status))
    status = PyConfig_SetString(&config, &config.home, L"/lib");
  if (!PyStatus_Exception(status))
    status = PyWideStringList_Append(&config.module_search_paths, L"/lib/python313.zip");
  if (!PyStatus_Exception(status))
    status = PyConfig_SetBytesString(&config, &config.stdio_encoding, "utf-8");
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) Py_ExitStatusException(status);

  PyObject *runner = PyImport_ImportModule("rlmbox_runner");
  if (runner == NULL) {
    PyErr_Print();
    abort();
  }
  g_entry = PyObject_GetAttrString(runner, "entry");
  Py_DECREF(runner);
  if (g_entry == NULL) {
    PyErr_Print();
    abort();
  }
}

EXPORT(rlmbox_alloc) void *rlmbox_alloc(uint32_t size) { return malloc(size ? size : 1); }

EXPORT(rlmbox_call) int64_t rlmbox_call(int32_t op, char *data, uint32_t len) {
  Py_CLEAR(g_last_result);
  PyObject *view = PyMemoryView_FromMemory(data, (Py_ssize_t)len, PyBUF_READ);
  PyObject *result = NULL;
  if (view != NULL) {
    result = PyObject_CallFunction(g_entry, "iO", (int)op, view);
    // The runner copies what it keeps; release the view before freeing the data.
    PyObject *release = PyObject_CallMethod(view, "release", NULL);
    if (release == NULL) PyErr_Clear();
    Py_XDECREF(release);
    Py_DECREF(view);
  }
  free(data);
  if (result == NULL || !PyBytes_Check(result)) {
    PyErr_Clear();
    Py_XDECREF(result);
    return -1;
  }
  g_last_result = result;
  uint32_t ptr = (uint32_t)(uintptr_t)PyBytes_AS_STRING(result);
  uint32_t n = (uint32_t)PyBytes_GET_SIZE(result);
  return (int64_t)(((uint64_t)ptr << 32) | n);
}

EXPORT(rlmbox_interrupt) void rlmbox_interrupt(void) { PyErr_SetInterruptEx(SIGINT); }
