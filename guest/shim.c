// rlmbox guest shim: a WASI reactor around libpython.
//
// The host talks to the guest through four exports and two imports:
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
//   import rlmbox.memory_refused(size)
//                                   an allocation of `size` bytes failed.
//   import rlmbox.host_call(req, req_len, resp, resp_cap) -> i64
//                                   the host door (llm_query & co). Returns the reply
//                                   length; when that exceeds resp_cap the reply
//                                   stays pending on the host and is fetched by
//                                   calling again with req == NULL. Negative on error.
//
// Everything the host reads back is validated by the host: this file is
// untrusted from the host's point of view.
#define PY_SSIZE_T_CLEAN
// The cell compiler below uses the parser's and compiler's own entry points
// (C AST in an arena), which are internal to the interpreter this shim is
// linked into.
#define Py_BUILD_CORE 1
#include <Python.h>
#include "pycore_ast.h"
#include "pycore_compile.h"
#include "pycore_parser.h"
#include "pycore_pyarena.h"
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(#name))) __attribute__((used))

__attribute__((import_module("rlmbox"), import_name("host_call"))) extern int64_t
rlmbox_host_call(const void *req, uint32_t req_len, void *resp, uint32_t resp_cap);

__attribute__((import_module("rlmbox"), import_name("memory_refused"))) extern void
rlmbox_memory_refused(int32_t increment);

// The allocator, linked with --wrap=malloc,calloc,realloc: an allocation that
// failed is reported with its size, so the host can tell a MemoryError from its
// memory limit (it believes the report only when the size is beyond the cap)
// from one the code raised itself.
extern void *__real_malloc(size_t size);
extern void *__real_calloc(size_t n, size_t size);
extern void *__real_realloc(void *p, size_t size);

static void report_refused(size_t size) {
  rlmbox_memory_refused(size > INT32_MAX ? INT32_MAX : (int32_t)size);
}
void *__wrap_malloc(size_t size) {
  void *r = __real_malloc(size);
  if (r == NULL && size > 0) report_refused(size);
  return r;
}
void *__wrap_calloc(size_t n, size_t size) {
  void *r = __real_calloc(n, size);
  if (r == NULL && n > 0 && size > 0) report_refused(size > SIZE_MAX / n ? SIZE_MAX : n * size);
  return r;
}
void *__wrap_realloc(void *p, size_t size) {
  void *r = __real_realloc(p, size);
  if (r == NULL && size > 0) report_refused(size);
  return r;
}
// The interpreter's own out-of-memory path (every MemoryError CPython raises,
// linked with --wrap=_PyErr_NoMemory; `raise MemoryError` in Python code never
// comes here): reported with size 0, "more than there is" (a request past the
// address space fails before any allocation, bytearray(2**31 - 1)).
extern PyObject *__real__PyErr_NoMemory(PyThreadState *tstate);
PyObject *__wrap__PyErr_NoMemory(PyThreadState *tstate) {
  rlmbox_memory_refused(0);
  return __real__PyErr_NoMemory(tstate);
}

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

// ---- the import policy's enforcement inside the interpreter ----
//
// Once a cell ran under allowed_imports, the instance keeps that policy for
// its lifetime, and hooks in the interpreter (guest/cpython-patches) hold
// every piece of code it runs to the policy, whichever object path led there.
// "The cell's code" is any frame whose globals are not those of a module in
// sys.modules: the cell's namespace, and anything exec'd with a dictionary it
// built (a library helper running source the cell chose, say). A "computed"
// read is one whose name the code chose at run time: getattr(), hasattr(),
// vars(), operator.attrgetter/methodcaller, from any frame (library code such
// as functools.update_wrapper reading names the cell passed it).
//   - Interpreter internals (a function's __globals__, __builtins__,
//     __closure__, __code__, __defaults__; a frame's f_globals, f_locals,
//     f_builtins, f_code; a generator's or traceback's frame; a module's
//     __dict__; a builtin function's module (__self__); type.__subclasses__())
//     are refused to the cell's code and to computed reads.
//   - Module attribute reads by the cell's code, and computed ones, go through
//     policy.module_read: no module the policy does not allow, and no loader or
//     spec, is handed out; and to the cell's code such a module is inert. (A
//     library probing its own imports, hasattr(os, "getpid"), still works.)
//   - `import` by the cell's code with the real __import__ is checked too.
// Library code reading fixed names for its own work (dataclasses, logging,
// traceback) is unaffected; so are the runner, the policy itself, the codec
// registry, inspect (dataclasses' signatures) and the import system's
// bookkeeping (the exempt globals, rlmbox_runner._set_policy).
static PyObject *g_policy_ns;       // the cell namespace (__main__'s dict)
static PyObject *g_policy_read;     // policy.module_read(module, name, value, strict)
static PyObject *g_policy_import;   // policy.import_check(name, level)
static PyObject *g_policy_error;    // PolicyViolation
static PyObject *g_policy_exempt;   // tuple of globals dicts exempt from all of this
static PyObject *g_name_key;        // "__name__"

enum frame_kind { FRAME_EXEMPT, FRAME_LIBRARY, FRAME_USER };

static enum frame_kind current_frame_kind(void) {
  PyObject *globals = PyEval_GetGlobals();  // borrowed; NULL without a Python frame
  if (globals == NULL) return FRAME_LIBRARY;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(g_policy_exempt); i++) {
    if (PyTuple_GET_ITEM(g_policy_exempt, i) == globals) return FRAME_EXEMPT;
  }
  if (globals == g_policy_ns || !PyDict_Check(globals)) return FRAME_USER;
  PyObject *name = PyDict_GetItemWithError(globals, g_name_key);
  PyObject *modules = PySys_GetObject("modules");
  if (name == NULL || !PyUnicode_Check(name) || modules == NULL || !PyDict_Check(modules)) {
    PyErr_Clear();
    return FRAME_USER;
  }
  PyObject *module = PyDict_GetItemWithError(modules, name);
  if (module == NULL || !PyModule_Check(module) || PyModule_GetDict(module) != globals) {
    PyErr_Clear();
    return FRAME_USER;
  }
  return FRAME_LIBRARY;
}

static int policy_audit_hook(const char *event, PyObject *args, void *data) {
  (void)data;
  if (g_policy_read == NULL || strcmp(event, "object.__getattr__") != 0) return 0;
  if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 2) return 0;
  PyObject *obj = PyTuple_GET_ITEM(args, 0), *name = PyTuple_GET_ITEM(args, 1);
  // The cell's own namespace, read as __main__'s __dict__, is its own already.
  if (PyModule_Check(obj) && PyModule_GetDict(obj) == g_policy_ns) return 0;
  enum frame_kind kind = current_frame_kind();
  if (kind == FRAME_EXEMPT || (kind == FRAME_LIBRARY && _Py_rlmbox_computed == 0)) return 0;
  PyErr_Format(g_policy_error, "access to the attribute '%S' is not allowed", name);
  return -1;
}

static int policy_module_read(PyObject *module, PyObject *name, PyObject *value) {
  if (g_policy_read == NULL) return 0;
  enum frame_kind kind = current_frame_kind();
  if (kind == FRAME_EXEMPT || (kind == FRAME_LIBRARY && _Py_rlmbox_computed == 0)) return 0;
  PyObject *strict = kind == FRAME_USER ? Py_True : Py_False;
  PyObject *r = PyObject_CallFunctionObjArgs(g_policy_read, module, name, value, strict, NULL);
  if (r == NULL) return -1;
  Py_DECREF(r);
  return 0;
}

static int policy_import(PyObject *name, int level) {
  if (g_policy_import == NULL || current_frame_kind() != FRAME_USER) return 0;
  PyObject *lvl = PyLong_FromLong(level);
  if (lvl == NULL) return -1;
  PyObject *r = PyObject_CallFunctionObjArgs(g_policy_import, name, lvl, NULL);
  Py_DECREF(lvl);
  if (r == NULL) return -1;
  Py_DECREF(r);
  return 0;
}

static PyObject *door_enforce_policy(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *ns, *read, *import_check, *error, *exempt;
  if (!PyArg_ParseTuple(args, "O!OOOO!", &PyDict_Type, &ns, &read, &import_check, &error,
                        &PyTuple_Type, &exempt))
    return NULL;
  if (g_policy_read != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "the import policy is already enforced");
    return NULL;
  }
  g_name_key = PyUnicode_InternFromString("__name__");
  if (g_name_key == NULL) return NULL;
  // Only now: an instance without a policy pays nothing for audit events.
  if (PySys_AddAuditHook(policy_audit_hook, NULL) != 0) return NULL;
  g_policy_ns = Py_NewRef(ns);
  g_policy_error = Py_NewRef(error);
  g_policy_exempt = Py_NewRef(exempt);
  g_policy_import = Py_NewRef(import_check);
  g_policy_read = Py_NewRef(read);
  _Py_rlmbox_attr_check = policy_module_read;
  _Py_rlmbox_import_check = policy_import;
  Py_RETURN_NONE;
}

// compile_cell(source, filename) -> (code, last): the REPL's compile in one parse
// and without Python AST objects. A trailing expression statement is split off
// and compiled as an expression (`last`, or None), so the runner can echo its
// value; the rest is compiled as a module. Errors are the SyntaxErrors
// compile() raises. (With an import policy the runner takes the ast path, as it
// needs the tree.)
static PyObject *door_compile_cell(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *source, *filename;
  if (!PyArg_ParseTuple(args, "UU", &source, &filename)) return NULL;
  Py_ssize_t size = 0;
  const char *text = PyUnicode_AsUTF8AndSize(source, &size);
  if (text == NULL) return NULL;
  if ((size_t)size != strlen(text)) {
    PyErr_SetString(PyExc_SyntaxError, "source code string cannot contain null bytes");
    return NULL;
  }
  PyArena *arena = _PyArena_New();
  if (arena == NULL) return NULL;
  PyCompilerFlags flags = _PyCompilerFlags_INIT;
  flags.cf_flags = PyCF_SOURCE_IS_UTF8;
  PyObject *code = NULL, *last = NULL, *result = NULL;
  mod_ty mod = _PyParser_ASTFromString(text, filename, Py_file_input, &flags, arena);
  if (mod == NULL) goto done;
  mod_ty tail = NULL;
  asdl_stmt_seq *body = mod->v.Module.body;
  Py_ssize_t n = asdl_seq_LEN(body);
  if (n > 0 && asdl_seq_GET(body, n - 1)->kind == Expr_kind) {
    tail = _PyAST_Expression(asdl_seq_GET(body, n - 1)->v.Expr.value, arena);
    if (tail == NULL) goto done;
    body->size = n - 1;
  }
  code = (PyObject *)_PyAST_Compile(mod, filename, &flags, -1, arena);
  if (code == NULL) goto done;
  if (tail != NULL) {
    last = (PyObject *)_PyAST_Compile(tail, filename, &flags, -1, arena);
    if (last == NULL) goto done;
  }
  result = PyTuple_Pack(2, code, last != NULL ? last : Py_None);
done:
  Py_XDECREF(code);
  Py_XDECREF(last);
  _PyArena_Free(arena);
  return result;
}

static PyMethodDef door_methods[] = {
    {"host_call", door_host_call, METH_O,
     "host_call(request: bytes) -> bytes: one call through the sandbox's host door."},
    {"enforce_policy", door_enforce_policy, METH_VARARGS,
     "enforce_policy(namespace, module_read, import_check, error, exempt_globals): "
     "holds all later code to the import policy (once per instance)."},
    {"compile_cell", door_compile_cell, METH_VARARGS,
     "compile_cell(source, filename) -> (code, last expression's code or None)."},
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
