"""rlmbox import policy: `allowed_imports` enforced inside the guest.

A cell that runs under a policy may import only the listed modules (and their
submodules), and cannot reach any other module through the object graph. The
WebAssembly sandbox stays the security boundary (no network, no host files);
this layer is the workflow engine's per-node policy on top of it.

How it holds (docs/nodes.md, "Import policy"):
  1. The cell's source is parsed and checked before it runs: attribute names
     starting with "__" are refused unless on a short list of harmless ones,
     as are frame, code and generator internals (f_globals, gi_frame, ...),
     and names starting with "_rlmbox". Every attribute read is rewritten into
     a call of the guard, which refuses a module that is not allowed.
  2. The cell runs with its own builtins: a copy of the real ones in which
     __import__, getattr, hasattr, vars, exec, eval and compile are guarded and
     breakpoint is gone. `import` statements, `__import__`, `exec("import x")`
     all end in the guarded import, which checks the name whether or not the
     module was already imported (at snapshot time or since).
  3. `from m import name` is checked too: a name that is a module must be
     allowed.
  4. Modules that hand out interpreter internals (sys, builtins, importlib,
     gc, inspect, pickle, marshal, types, ...) cannot be allowed at all; a few
     common ones are handed out with their reflective helpers removed
     (operator.attrgetter, string.Formatter, typing.get_type_hints, ...).
Everything here runs before the user's code, holds no state the code can
reach, and is part of the snapshot.
"""

import ast
import builtins
import sys

# Modules that give the code a way around the policy; never allowed.
# A dotted name refuses that submodule (and its own submodules) only.
REFUSED = frozenset({
    # the interpreter's own internals
    "sys", "builtins", "importlib", "gc", "inspect", "pickle", "marshal", "types",
    "ctypes", "code", "codeop", "pdb", "bdb", "runpy", "pkgutil", "zipimport",
    "copyreg", "shelve", "dis", "tracemalloc", "faulthandler", "symtable", "site",
    "sysconfig", "signal", "rlmbox_runner", "rlmbox_policy",
    # modules that import or run names or source given as strings, with their
    # own (unguarded) builtins: timeit.timeit("..."), cProfile.run("..."),
    # pydoc.locate("os"), unittest.mock.patch("os.x").getter(), dictConfig's "()"
    "timeit", "profile", "cProfile", "trace", "doctest", "pydoc", "unittest",
    "logging.config", "multiprocessing", "idlelib", "test",
})

# Allowed modules handed out without these attributes (each can read any
# attribute by name or evaluate strings outside the guard).
_STRIPPED = {
    "operator": {"attrgetter", "methodcaller"},
    "string": {"Formatter"},
    "typing": {"get_type_hints", "ForwardRef", "_eval_type", "evaluate_forward_ref"},
    "functools": {"singledispatch", "singledispatchmethod"},
    "logging": {"currentframe"},
}

# Dunder attributes a cell may read: nothing reachable from them leads further
# than `type(x)` already does.
_SAFE_DUNDERS = frozenset({
    "__init__", "__class__", "__name__", "__qualname__", "__doc__", "__len__",
    "__iter__", "__next__", "__enter__", "__exit__", "__eq__", "__ne__", "__lt__",
    "__le__", "__gt__", "__ge__", "__hash__", "__repr__", "__str__", "__contains__",
    "__getitem__", "__setitem__", "__delitem__", "__call__", "__add__", "__sub__",
    "__mul__", "__truediv__", "__floordiv__", "__mod__", "__neg__", "__bool__",
    "__post_init__", "__slots__", "__version__", "__all__",
})

# Frame, code, generator and traceback internals: each leads to globals.
_INTERNALS = frozenset({
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace",
    "gi_frame", "gi_code", "gi_yieldfrom", "gi_suspended",
    "cr_frame", "cr_code", "cr_await", "cr_origin",
    "ag_frame", "ag_code", "ag_await",
    "tb_frame", "tb_next", "co_consts", "co_code",
    "func_globals", "func_code", "mro", "_module", "_evaluate", "evaluate",
})

# Dunder names a module hands out to the cell (everything else with a leading
# underscore is private to the module).
_MODULE_DUNDERS = frozenset({"__name__", "__doc__", "__all__", "__version__", "__file__"})

# A module's entries that lead to the import machinery or the real builtins.
_MODULE_MACHINERY = frozenset({"__spec__", "__loader__", "__builtins__", "__dict__"})

_TEMPLATE_FIELD = __import__("re").compile(r"[.\[]\s*([A-Za-z_]\w*)")
_RESERVED_PREFIX = "_rlmbox"
_GUARD = "_rlmbox_getattr"
_module_type = type(builtins)


def refused(name):
    """True for a module that can never be allowed (REFUSED, or private)."""
    parts = name.split(".")
    return parts[0].startswith("_") or any(
        ".".join(parts[:i]) in REFUSED for i in range(1, len(parts) + 1))


class CompiledCode:
    """What compile() hands a cell under a policy: a handle exec() and eval()
    accept. The code object itself stays out of reach: with it, type(code) and
    code.replace() would build code of any bytecode, past the checker."""

    __slots__ = ("__weakref__",)

    def __repr__(self):
        return "<compiled code>"


def valid_module_name(name):
    return isinstance(name, str) and name != "" and all(p.isidentifier() for p in name.split("."))


def _attr_allowed(name):
    if name.startswith("__"):
        return name in _SAFE_DUNDERS
    if name.startswith(_RESERVED_PREFIX):
        return False
    return name not in _INTERNALS


class PolicyViolation(ImportError):
    """The code tried to reach something the import policy does not allow."""


PolicyViolation.__module__ = "builtins"


class _Checker(ast.NodeTransformer):
    """Refuses forbidden names and routes every attribute read through the guard."""

    def __init__(self, filename):
        self.filename = filename

    def _refuse(self, node, message):
        err = SyntaxError(message)
        err.filename = self.filename
        err.lineno = getattr(node, "lineno", None)
        raise err

    def _check_name(self, node, name):
        if name.startswith(_RESERVED_PREFIX):
            self._refuse(node, f"the name '{name}' is reserved")

    def visit_Name(self, node):
        self._check_name(node, node.id)
        return node

    def visit_arg(self, node):
        self._check_name(node, node.arg)
        return self.generic_visit(node)

    def visit_FunctionDef(self, node):
        self._check_name(node, node.name)
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._check_name(node, node.name)
        return self.generic_visit(node)

    def visit_alias(self, node):
        self._check_name(node, node.asname or node.name)
        return node

    def visit_MatchClass(self, node):
        for name in node.kwd_attrs:
            if not _attr_allowed(name):
                self._refuse(node, f"access to the attribute '{name}' is not allowed")
        return self.generic_visit(node)

    def visit_Attribute(self, node):
        if not _attr_allowed(node.attr):
            self._refuse(node, f"access to the attribute '{node.attr}' is not allowed")
        node = self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            call = ast.Call(func=ast.Name(_GUARD, ast.Load()),
                            args=[node.value, ast.Constant(node.attr)], keywords=[])
            return ast.copy_location(call, node)
        return node


class Policy:
    """One allowed-imports list, and the builtins a cell under it runs with."""

    def __init__(self, allowed):
        names = []
        for name in allowed:
            if not valid_module_name(name):
                raise ValueError(f"allowed_imports: {name!r} is not a module name")
            if refused(name):
                raise ValueError(f"allowed_imports: '{name}' gives access to the interpreter "
                                 "itself and cannot be allowed")
            names.append(name)
        self.allowed = frozenset(names)
        self._compiled = {}  # id(handle) -> (CompiledCode handle, code object)
        self._module_keys = {}  # id(module) -> the allowed sys.modules key it was found under
        self._proxies = {}
        self.builtins = self._make_builtins()

    # -- what is allowed

    def module_allowed(self, name):
        if refused(name):
            return False
        parts = name.split(".")
        return any(".".join(parts[:i]) in self.allowed for i in range(1, len(parts) + 1))

    def allows_module(self, module):
        """True when `module` is registered in sys.modules under a name the
        policy allows (os.path is the module posixpath). By identity: a module
        that renamed itself (its __name__ is an attribute like any other) gains
        nothing."""
        if module is sys.modules.get("__main__"):
            return True  # the cells' own namespace
        key = self._module_keys.get(id(module))
        if key is not None and (sys.modules.get(key) is module or self._proxies.get(key) is module):
            return True
        for key, value in list(sys.modules.items()):
            if value is module and isinstance(key, str) and self.module_allowed(key):
                self._module_keys[id(module)] = key
                return True
        return False

    def _refuse_module(self, module):
        name = module.__dict__.get("__name__")
        if not isinstance(name, str):
            name = "?"
        raise PolicyViolation(f"import of '{name}' is not allowed (allowed_imports)")

    def module_read(self, module, name, value, strict=True):
        """The interpreter's rule for reading `module.name` (giving `value`) by
        the cell's code, or by a computed name (guest/shim.c calls this): a
        module the policy does not allow is inert (`strict`: the cell's own
        code; a library probing its own imports, hasattr(os, "getpid"), is not
        strict), no such module is handed out, and neither is the import
        machinery (a module's loader and spec load any module)."""
        if module is sys.modules.get("__main__"):
            return  # the cells' own namespace
        if name in _MODULE_MACHINERY:
            raise PolicyViolation(f"access to the attribute '{name}' is not allowed")
        if strict and not self.allows_module(module):
            self._refuse_module(module)
        if isinstance(value, _module_type) and not self.allows_module(value):
            self._refuse_module(value)

    def import_check(self, name, level):
        """The interpreter's rule for an import by the cell's code that did not
        go through the guarded __import__ (the real one, reached by a library
        helper that ran source the cell chose)."""
        if level != 0:
            raise PolicyViolation("relative imports are not allowed")
        if not self.module_allowed(name):
            raise PolicyViolation(f"import of '{name}' is not allowed (allowed_imports)")

    def _hand_out(self, value, parent=None, attr=None):
        """A module the code may hold (maybe stripped), or PolicyViolation."""
        if not isinstance(value, _module_type):
            return value
        if not self.allows_module(value):
            self._refuse_module(value)
        name = value.__name__
        stripped = _STRIPPED.get(name)
        if not stripped:
            return value
        proxy = self._proxies.get(name)
        if proxy is None:
            proxy = _module_type(name, value.__doc__)
            for key, item in vars(value).items():
                if key not in stripped and not key.startswith("_"):
                    setattr(proxy, key, item)
            self._proxies[name] = proxy
            self._module_keys[id(proxy)] = name
        return proxy

    # -- the guarded builtins

    def _make_builtins(self):
        real_import = builtins.__import__
        real_getattr = builtins.getattr
        real_compile = builtins.compile
        real_exec = builtins.exec
        real_eval = builtins.eval
        policy = self

        def guarded_getattr(obj, name, *default):
            if not isinstance(name, str):
                raise TypeError("attribute name must be a string")
            if not _attr_allowed(name):
                raise PolicyViolation(f"access to the attribute '{name}' is not allowed")
            try:
                value = real_getattr(obj, name)
            except AttributeError:
                if default:
                    return default[0]
                raise
            if isinstance(obj, _module_type):
                # A module's private helpers (some run source with the real
                # builtins) are not the cell's to call.
                if name.startswith("_") and name not in _MODULE_DUNDERS:
                    raise PolicyViolation(f"access to the attribute '{name}' is not allowed")
                policy.module_read(obj, name, value)
            return policy._hand_out(value, obj, name)

        def guarded_hasattr(obj, name):
            try:
                guarded_getattr(obj, name)
            except (AttributeError, PolicyViolation):
                return False
            return True

        def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
            if not isinstance(name, str):
                raise TypeError("module name must be a string")
            if level != 0:
                raise PolicyViolation("relative imports are not allowed")
            if not policy.module_allowed(name):
                raise PolicyViolation(f"import of '{name}' is not allowed (allowed_imports)")
            module = real_import(name, None, None, fromlist, 0)
            if fromlist:
                for item in fromlist:
                    if item == "*":
                        names = real_getattr(module, "__all__", None)
                        if names is None:
                            names = [k for k in vars(module) if not k.startswith("_")]
                        for k in names:
                            policy._hand_out(real_getattr(module, k, None))
                        continue
                    if not isinstance(item, str) or not _attr_allowed(item):
                        raise PolicyViolation(f"import of '{item}' is not allowed")
                    attr = real_getattr(module, item, None)
                    if isinstance(attr, _module_type):
                        policy._hand_out(attr, module, item)
                    elif attr is None and not policy.module_allowed(f"{name}.{item}"):
                        raise PolicyViolation(f"import of '{name}.{item}' is not allowed")
                return policy._hand_out(module)
            return policy._hand_out(module)

        def guarded_vars(*args):
            if not args:
                raise PolicyViolation("vars() without an argument is not allowed here; "
                                      "use locals()")
            obj = args[0]
            if isinstance(obj, _module_type):
                policy.module_read(obj, "__name__", None)  # refuses a module not allowed
            return {k: v for k, v in real_getattr(obj, "__dict__").items()
                    if _attr_allowed(k) and not (isinstance(obj, _module_type) and k[:1] == "_")
                    and not (isinstance(v, _module_type) and not policy.allows_module(v))}

        def compile_checked(source, filename, mode):
            if not isinstance(source, (str, bytes)):
                raise PolicyViolation("compile() accepts source text only here")
            if isinstance(source, bytes):
                source = source.decode("utf-8")
            return real_compile(policy.check(source, filename, mode), filename, mode)

        def guarded_compile(source, filename="<string>", mode="exec", *args, **kwargs):
            handle = CompiledCode()
            policy._compiled[id(handle)] = (handle, compile_checked(source, filename, mode))
            return handle

        def _prepare(source, mode, globals_, locals_):
            if isinstance(source, (str, bytes)):
                source = compile_checked(source, "<string>", mode)
            else:
                entry = policy._compiled.get(id(source))
                if entry is None or entry[0] is not source:
                    raise PolicyViolation("exec() and eval() accept source text or code from "
                                          "compile() only here")
                source = entry[1]
            if globals_ is None:
                # Like the real ones: the caller's namespace (two frames up).
                caller = sys._getframe(2)
                globals_ = caller.f_globals
                if locals_ is None:
                    locals_ = caller.f_locals
            if not isinstance(globals_, dict):
                raise TypeError("globals must be a dict")
            globals_["__builtins__"] = policy.builtins
            return source, globals_, locals_

        def guarded_exec(source, globals=None, locals=None, /):
            return real_exec(*_prepare(source, "exec", globals, locals))

        def guarded_eval(source, globals=None, locals=None, /):
            return real_eval(*_prepare(source, "eval", globals, locals))

        table = {k: v for k, v in vars(builtins).items()
                 if k not in ("__loader__", "__spec__", "__package__", "breakpoint",
                              "help", "copyright", "credits", "license", "exit", "quit")}
        table.update({
            "__import__": guarded_import,
            "getattr": guarded_getattr,
            "hasattr": guarded_hasattr,
            "vars": guarded_vars,
            "compile": guarded_compile,
            "exec": guarded_exec,
            "eval": guarded_eval,
            _GUARD: guarded_getattr,
        })
        return table

    # -- checking source

    def check(self, source, filename, mode="exec"):
        """The checked and rewritten tree of `source` (SyntaxError if refused)."""
        tree = ast.parse(source, filename, mode)
        tree = _Checker(filename).visit(tree)
        return ast.fix_missing_locations(tree)

    def check_template(self, template):
        """Refuses a str.format template that reads forbidden attributes."""
        for match in _TEMPLATE_FIELD.finditer(template):
            name = match.group(1)
            if not _attr_allowed(name):
                raise PolicyViolation(f"access to the attribute '{name}' is not allowed")

    def check_tree(self, tree, filename):
        return ast.fix_missing_locations(_Checker(filename).visit(tree))
