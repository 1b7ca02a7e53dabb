"""allowed_imports, the seed's "security audit": code under an import policy
tries every route around it we know of. Each attempt must fail with the
policy's refusal, and allowed modules must keep working."""
import pytest

ALLOWED = ["json", "math", "operator", "string", "typing", "collections", "functools",
           "dataclasses", "enum", "logging"]

# A metaclass whose instance check always holds: a class pattern then matches
# any subject, and match reads the names in __match_args__ with a C-level getattr.
_ANY = "class Any(type):\n  def __instancecheck__(cls, obj):\n    return True\n"

# (name, code): each tries to reach a module outside ALLOWED.
BYPASSES = [
    ("import_statement", "import os"),
    ("from_import", "from os import path"),
    ("dunder_import", "__import__('os')"),
    ("builtins_dict_import", "__builtins__['__import__']('sys')"),
    ("exec_import", "exec('import os')"),
    ("eval_import", "eval(\"__import__('sys')\")"),
    ("compile_then_exec", "exec(compile('import sys', 'x', 'exec'))"),
    ("importlib", "import importlib\nimportlib.import_module('os')"),
    ("sys_modules", "import sys\nsys.modules['os']"),
    ("snapshot_preloaded_module", "import hashlib"),  # imported at snapshot time
    ("subclasses_walk", "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close']"),
    ("getattr_dunder", "getattr(object, '__subclasses__')()"),
    ("builtin_self", "print.__self__.__import__('os')"),
    ("getattr_builtin_self", "getattr(print, '__sel' + 'f__')"),
    ("function_globals", "json_dumps = __import__('json').dumps\njson_dumps.__globals__['sys']"),
    ("allowed_module_chain", "import json\njson.decoder.re.enum.sys"),
    ("from_allowed_submodule", "from json.decoder import re"),
    ("vars_of_type", "vars(object)['__subclasses__'](object)"),
    ("operator_attrgetter", "import operator\noperator.attrgetter('__globals__')"),
    ("string_formatter", "import string\nstring.Formatter().get_field('0.__globals__', [len], {})"),
    ("typing_forward_ref", "import typing\ntyping.get_args(typing.List['x'])[0]._evaluate(None, None, None)"),
    ("generator_frame", "g = (i for i in [1])\ng.gi_frame.f_globals"),
    ("traceback_frames", "try:\n  1/0\nexcept Exception as e:\n  e.__traceback__.tb_frame.f_globals"),
    ("match_class_attr", "match print:\n  case object(__self__=b):\n    b.__import__('os')"),
    ("fstring_attr", "f'{print.__self__}'"),
    ("shadow_guard", "_rlmbox_getattr = lambda o, n: o"),
    ("relative_import", "from . import os"),
    ("star_from_unallowed", "from os import *"),
    ("mro_walk", "type(1).mro()[-1]"),
] + [
    # Attribute reads the interpreter or a library does on the code's behalf,
    # past the source checker: closed in the interpreter (guest/shim.c).
    ("match_args_globals", _ANY + "import json\nclass C(metaclass=Any):\n  __match_args__ = ('__globals__',)\n"
     "match json.dumps:\n  case C(g):\n    g['__builtins__']['__import__']('os')"),
    ("match_args_builtin_self", _ANY + "class C(metaclass=Any):\n  __match_args__ = ('__self__',)\n"
     "class D(metaclass=Any):\n  __match_args__ = ('__import__',)\n"
     "match print:\n  case C(b):\n    match b:\n      case D(imp):\n        imp('os')"),
    ("match_args_traceback_frame", _ANY + "class T(metaclass=Any):\n  __match_args__ = ('__traceback__',)\n"
     "class F(metaclass=Any):\n  __match_args__ = ('tb_frame',)\n"
     "class G(metaclass=Any):\n  __match_args__ = ('f_globals',)\n"
     "try:\n  1/0\nexcept Exception as e:\n  match e:\n    case T(F(G(g))):\n      g['sys']"),
    ("match_args_module_attribute", _ANY + "import json.decoder\nclass C(metaclass=Any):\n  __match_args__ = ('re',)\n"
     "match json.decoder:\n  case C(r):\n    r.compile"),
    ("format_field_globals", "import json\n'{0.__globals__}'.format(json.dumps)"),
    ("update_wrapper_updated_globals", "import functools, json\nclass W: pass\nw = W()\nd = {}\n"
     "setattr(w, '__globals__', d)\n"
     "functools.update_wrapper(w, json.dumps, assigned=(), updated=('__globals__',))\n"
     "d['__builtins__']['__import__']('os')"),
    ("update_wrapper_assigned_module", _ANY + "import functools, json.decoder\nclass W: pass\nw = W()\n"
     "functools.update_wrapper(w, json.decoder, assigned=('re',), updated=())\n"
     "class C(metaclass=Any):\n  __match_args__ = ('__dict__',)\n"
     "match w:\n  case C(d):\n    d['re'].compile"),
    ("update_wrapper_private_helper", "import functools, dataclasses\nclass W: pass\nw = W()\n"
     "functools.update_wrapper(w, dataclasses, assigned=('_FuncBuilder',), updated=())\n"
     "class K: pass\nb = w._FuncBuilder({})\n"
     "b.add_fn('f', [], ['  return __import__(\"os\").getcwd()'])\nb.add_fns_to_class(K)\nK.f()"),
    ("loader_of_allowed_module", _ANY + "import json\nclass C(metaclass=Any):\n  __match_args__ = ('__spec__',)\n"
     "class D(metaclass=Any):\n  __match_args__ = ('getcwd',)\n"
     "match json:\n  case C(s):\n    m = s.loader.load_module('os')\n    match m:\n      case D(g):\n        g()"),
    ("private_helper_exec", "import dataclasses\nclass K: pass\nb = dataclasses._FuncBuilder({})\n"
     "b.add_fn('f', [], ['  return __import__(\"os\").getcwd()'])\nb.add_fns_to_class(K)\nK.f()"),
    ("update_wrapper_closure", "import functools, json\nclass W: pass\nw = W()\n"
     "functools.update_wrapper(w, json.dumps, assigned=('__closure__', '__code__', '__defaults__'), updated=())"),
    ("update_wrapper_module_value", "import json.decoder\nimport functools\nclass W: pass\nw = W()\n"
     "functools.update_wrapper(w, json.decoder, assigned=('re',), updated=())"),
]


@pytest.mark.parametrize("name,code", BYPASSES, ids=[b[0] for b in BYPASSES])
def test_bypass_attempt_is_refused(svc, name, code):
    status, r = svc.post("/nodes/execute", {"type": "code", "code": code,
                                            "allowed_imports": ALLOWED})
    assert status == 200, r
    assert r["success"] is False, (name, r)
    assert r["outcome"] == "exception", r
    assert "not allowed" in r["error"] or "reserved" in r["error"] \
        or "no attribute" in r["error"] or "cannot import name" in r["error"] \
        or "KeyError: '__" in r["error"], r  # vars() hands out no dunder entries


def test_at_least_twelve_attempts():
    assert len(BYPASSES) >= 12


ALLOWED_USES = [
    ("import json\njson.loads('[1, 2]')", [1, 2]),
    ("from math import sqrt\nsqrt(16)", 4.0),
    ("import operator\nsum(map(operator.mul, [1, 2], [3, 4]))", 11),
    ("from collections import Counter\nCounter('aab')['a']", 2),
    ("from typing import List\nx: List[int] = [1]\nx", [1]),
    ("from json import decoder\ndecoder.JSONDecoder().decode('3')", 3),
    ("class A:\n  def __init__(self):\n    super().__init__(); self.v = 5\nA().v", 5),
    ("exec('y = 7')\ny", 7),
    ("eval('2 ** 5')", 32),
    ("type(3).__name__", "int"),
    ("import string\nstring.ascii_lowercase[:3]", "abc"),
    # library code that reads interpreter internals for its own work still runs
    ("from dataclasses import dataclass, field\n@dataclass\nclass P:\n  x: int\n"
     "  y: list = field(default_factory=list)\nP(1).x + len(P(2).y)", 1),
    ("import functools\ndef deco(f):\n  @functools.wraps(f)\n  def w(*a):\n    return f(*a)\n"
     "  return w\n@deco\ndef g(x):\n  return x + 1\n[g(1), g.__name__]", [2, "g"]),
    ("import enum\nclass Col(enum.Enum):\n  R = 1\nCol.R.value", 1),
    ("import logging\nlogging.getLogger('x').warning('w %s', 1)\n3", 3),
    ("from math import *\nfloor(2.5)", 2),
    ("import json\ngetattr(json, 'dumps')([1])", "[1]"),
    ("import collections\ncollections.namedtuple('P', 'a b')(1, 2).b", 2),
    ("try:\n  1/0\nexcept ZeroDivisionError as e:\n  r = type(e).__name__\nr", "ZeroDivisionError"),
    ("'{0}-{1.real}'.format('a', 3)", "a-3"),
    ("import functools\n@functools.lru_cache\ndef f(n):\n  return n if n < 2 else f(n-1) + f(n-2)\nf(30)", 832040),
]


@pytest.mark.parametrize("code,expected", ALLOWED_USES)
def test_allowed_modules_work(svc, code, expected):
    status, r = svc.post("/nodes/execute", {"type": "code", "code": code,
                                            "allowed_imports": ALLOWED})
    assert r["success"], r
    assert r["output"] == expected


# compile() under a policy hands out a handle, not a code object: with a code
# object, type(code)(...) or code.replace() would build bytecode the checker never saw.
CODE_OBJECT_ATTEMPTS = [
    ("code_type_constructor", "c = compile('1', 'c', 'eval')\ntype(c)(0, 0, 0, 0, 0, 0, b'', (), (), (), 'f', 'f', 'f', 1, b'', b'')",
     "takes no arguments"),
    ("code_replace", "c = compile('print.x', 'c', 'eval')\nc.replace(co_names=('print', '__self__'))",
     "has no attribute 'replace'"),
    ("function_from_compiled", "c = compile('1', 'c', 'exec')\ntype(lambda: 0)(c, {})",
     "must be code, not CompiledCode"),
    ("forged_handle", "c = compile('1', 'c', 'eval')\neval(type(c)())", "compile() only here"),
]


@pytest.mark.parametrize("name,code,message", CODE_OBJECT_ATTEMPTS,
                         ids=[c[0] for c in CODE_OBJECT_ATTEMPTS])
def test_code_objects_stay_out_of_reach(svc, name, code, message):
    status, r = svc.post("/nodes/execute", {"type": "code", "code": code,
                                            "allowed_imports": ALLOWED})
    assert status == 200 and not r["success"] and message in r["error"], (name, r)


def test_compiled_code_still_runs(svc):
    status, r = svc.post("/nodes/execute", {"type": "code", "allowed_imports": ALLOWED,
                                            "code": "c = compile('z = 6 * 7', 'c', 'exec')\n"
                                                    "exec(c)\nz"})
    assert r["success"] and r["output"] == 42, r


def test_modules_that_run_strings_cannot_be_allowed(svc):
    # Each of these imports or runs names / source given as strings, with its own
    # unguarded builtins (timeit.timeit("..."), pydoc.locate("os"), ...).
    for module in ["timeit", "cProfile", "profile", "pydoc", "unittest", "unittest.mock",
                   "doctest", "logging.config", "trace"]:
        status, r = svc.post("/nodes/execute", {"type": "code", "code": "1",
                                                "allowed_imports": [module]})
        assert status == 400 and "cannot be allowed" in r["error"], (module, r)
    # Allowing a package does not allow its refused submodule.
    status, r = svc.post("/nodes/execute", {"type": "code", "allowed_imports": ["logging"],
                                            "code": "import logging.config"})
    assert not r["success"] and "not allowed" in r["error"], r


def test_modules_that_expose_the_interpreter_cannot_be_allowed(svc):
    for module in ["sys", "builtins", "importlib", "gc", "inspect", "pickle", "types", "_imp"]:
        status, r = svc.post("/nodes/execute", {"type": "code", "code": "1",
                                                "allowed_imports": [module]})
        assert status == 400 and "cannot be allowed" in r["error"], (module, r)


def test_profile_allowlist_can_be_narrowed_not_widened(svc):
    # The "strict" profile (conftest) allows math and json.
    status, r = svc.post("/nodes/execute", {"type": "code", "profile": "strict",
                                            "code": "import os"})
    assert status == 200 and "not allowed" in r["error"]
    status, r = svc.post("/nodes/execute", {"type": "code", "profile": "strict",
                                            "code": "import json\n1", "allowed_imports": ["math"]})
    assert not r["success"] and "json" in r["error"]
    status, r = svc.post("/nodes/execute", {"type": "code", "profile": "strict",
                                            "code": "1", "allowed_imports": ["os"]})
    assert status == 400 and "not allowed by the 'strict' profile" in r["error"]


def test_naming_another_profile_does_not_escape_the_types_list(svc):
    # The tool profile (conftest) allows math and json only; "default" has no list.
    status, r = svc.post("/nodes/execute", {"type": "tool", "tool": "env", "profile": "default"})
    assert status == 200 and not r["success"] and "'os' is not allowed" in r["error"], r
    status, r = svc.post("/nodes/execute", {"type": "tool", "tool": "add", "profile": "default",
                                            "tool_args": {"a": 1, "b": 3}})
    assert r["success"] and r["output"]["root"] == 2.0


def test_llm_templates_are_checked_too(svc):
    status, r = svc.post("/nodes/execute", {"type": "llm", "allowed_imports": ["json"],
                                            "prompt": "{llm_query.__globals__}"})
    assert status == 200 and not r["success"] and "not allowed" in r["error"], r
    status, r = svc.post("/nodes/execute", {"type": "llm", "allowed_imports": ["json"],
                                            "prompt": "{x[0]} and {y.real}",
                                            "context": {"x": [1], "y": 2}})
    assert "llm nodes need a model" in r["error"]  # rendered fine; no model to call here


def test_submodules_under_another_name(svc):
    # os.path is the module posixpath, registered as "os.path": allowing os allows it.
    for code, expected in [("import os\nos.path.join('a', 'b')", "a/b"),
                           ("from os import path\npath.basename('/x/y')", "y"),
                           ("import os.path\nos.path.splitext('f.txt')[1]", ".txt")]:
        status, r = svc.post("/nodes/execute", {"type": "code", "code": code,
                                                "allowed_imports": ["os"]})
        assert r["success"] and r["output"] == expected, (code, r)
    # ...but the alias rule gives nothing else: json's own `re` stays out of reach.
    status, r = svc.post("/nodes/execute", {"type": "code", "allowed_imports": ["json"],
                                            "code": "import json\njson.decoder.re"})
    assert not r["success"] and "'re' is not allowed" in r["error"], r


def test_without_a_policy_imports_are_free(svc):
    status, r = svc.post("/nodes/execute", {"type": "code", "code": "import os, sys\nos.sep"})
    assert r["success"] and r["output"] == "/"
