"""The package's shape, read from its source with `ast` (nothing is imported).

* No import cycles between the modules of `tfbnn/`, counting imports inside
  functions (a lazy import that dodges a circle is still a circle) and leaving out
  `if TYPE_CHECKING:` blocks. A module that imports its own package's `__init__`
  (`import tfbnn` inside `tfbnn/`) closes a circle by construction, as a package
  holds its modules: such chains show the step from a package to its module as
  `=>`. `from tfbnn import metrics` is an import of the module `tfbnn.metrics`
  only (as `from tfbnn.metrics import x` is), not of `tfbnn/__init__`.
* No module over `MAX_MODULE_LINES` lines and no function or method over
  `MAX_FUNCTION_LINES` lines, counted from its `def` line to its last line
  (decorators excluded).
* No private name used across modules: `from tfbnn.x import _name`, or
  `something._name` in a module that does not define `_name` while another
  module of the package does (`metrics._mean_std`, `self.functional._batchable`).

The checker's own tests, on small packages written to `tmp_path`, follow.
"""

import ast
from collections import deque
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tfbnn"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def read_package(root: Path) -> dict[str, tuple[Path, ast.Module]]:
    """Dotted module name -> (file, syntax tree); a package's `__init__` is the package."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = (path, ast.parse(path.read_text(), str(path)))
    return modules


def is_package(modules, name: str) -> bool:
    return modules[name][0].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_nodes(node: ast.AST):
    """Every node under `node`, at any depth, except the bodies of `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from runtime_nodes(other)
            continue
        yield child
        yield from runtime_nodes(child)


def _from_base(modules, name: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module
    package = name if is_package(modules, name) else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def import_edges(modules, name: str) -> set[str]:
    """The package modules that module `name` imports (at run time, at any depth)."""
    targets = set()
    for node in runtime_nodes(modules[name][1]):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(modules, name, node)
            submodules = {f"{base}.{a.name}" for a in node.names} & modules.keys()
            targets |= submodules
            if len(submodules) < len(node.names):  # some names come from `base` itself
                targets.add(base)
    return (targets & modules.keys()) - {name}


def _in_own_package(name: str, target: str) -> bool:
    return name.startswith(target + ".")


def import_graph(modules) -> dict[str, set[str]]:
    """module -> the modules it imports, without imports of its own package's `__init__`."""
    return {name: {t for t in import_edges(modules, name) if not _in_own_package(name, t)}
            for name in modules}


def _path(graph, start: str, goal: str) -> list[str] | None:
    """The shortest chain of modules from `start` to `goal`, or None."""
    previous = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            chain = []
            while node is not None:
                chain.append(node)
                node = previous[node]
            return chain[::-1]
        for nxt in graph[node]:
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def import_cycles(modules) -> list[str]:
    """Every import that closes a circle, each shown in one shortest circle through it.

    An import of the module's own package (or an ancestor) is a circle by
    construction, shown as `package => module -> package`.
    """
    cycles = set()
    for name in modules:
        cycles.update(f"{t} => {name} -> {t}" for t in import_edges(modules, name)
                      if _in_own_package(name, t))
    graph = import_graph(modules)
    for source, targets in graph.items():
        for target in targets:
            back = _path(graph, target, source)
            if back is not None:
                ring = [source, *back[:-1]]
                start = ring.index(min(ring))  # one spelling per circle, whichever import found it
                ring = ring[start:] + ring[:start] + ring[start:start + 1]
                cycles.add(" -> ".join(ring))
    return sorted(cycles)


def long_modules(modules, limit: int = MAX_MODULE_LINES) -> list[str]:
    sizes = {name: len(path.read_text().splitlines()) for name, (path, _) in modules.items()}
    return [f"{name}: {n} lines" for name, n in sorted(sizes.items()) if n > limit]


def _functions(node: ast.AST, prefix: str):
    """`(qualified name, def node)` for every function and method under `node`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            qualname = f"{prefix}.{child.name}"
            if not isinstance(child, ast.ClassDef):
                yield qualname, child
            yield from _functions(child, qualname)
        else:
            yield from _functions(child, prefix)


def long_functions(modules, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    found = []
    for name, (_, tree) in sorted(modules.items()):
        for qualname, node in _functions(tree, name):
            size = node.end_lineno - node.lineno + 1  # from `def`: decorators excluded
            if size > limit:
                found.append(f"{qualname}: {size} lines")
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def private_definitions(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, assigned names and attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {n for n in names if _is_private(n)}


def private_uses(modules) -> list[str]:
    """Private names one module of the package takes from another."""
    defined = {name: private_definitions(tree) for name, (_, tree) in modules.items()}
    found = []
    for name, (_, tree) in sorted(modules.items()):
        for node in runtime_nodes(tree):
            if isinstance(node, ast.ImportFrom):
                base = _from_base(modules, name, node)
                found += [f"{name}:{node.lineno}: from {base} import {a.name}"
                          for a in node.names if base in modules and _is_private(a.name)
                          and f"{base}.{a.name}" not in modules]
            elif (isinstance(node, ast.Attribute) and _is_private(node.attr)
                  and node.attr not in defined[name]
                  and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                owners = sorted(m for m, names in defined.items() if node.attr in names)
                if owners:
                    found.append(f"{name}:{node.lineno}: {ast.unparse(node)} "
                                 f"(defined in {', '.join(owners)})")
    return found


# -- the package itself ------------------------------------------------------------------


def test_no_import_cycles():
    cycles = import_cycles(read_package(PACKAGE))
    assert not cycles, ("Import cycles in tfbnn/ (`package => module`: a package holds its "
                        "module):\n" + "\n".join(cycles))


def test_no_module_over_the_line_limit():
    found = long_modules(read_package(PACKAGE))
    assert not found, f"Modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(found)


def test_no_function_over_the_line_limit():
    found = long_functions(read_package(PACKAGE))
    assert not found, (f"Functions over {MAX_FUNCTION_LINES} lines (def to last line, "
                       "decorators excluded):\n" + "\n".join(found))


def test_no_private_name_used_across_modules():
    found = private_uses(read_package(PACKAGE))
    assert not found, "Private names used outside their module:\n" + "\n".join(found)


# -- the checker, on small packages ----------------------------------------------------------


def write_package(tmp_path: Path, files: dict[str, str]) -> dict:
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return read_package(tmp_path / "pkg")


def test_a_clean_package_passes_every_check(tmp_path):
    modules = write_package(tmp_path, {
        "pkg/__init__.py": "from pkg.a import f\nfrom pkg import sub\n",
        "pkg/a.py": "from pkg import b\n\ndef f():\n    return b.g() + b.PUBLIC\n",
        "pkg/b.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg import a\n"
                    "PUBLIC = 1\n\ndef g():\n    from pkg.sub import c\n    return c.h()\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "from pkg import _util\n\nclass C:\n    def __init__(self):\n"
                        "        self._x = 1\n\n    def h(self):\n        return self._x\n",
        "pkg/_util.py": "def helper():\n    return 1\n",
    })
    assert set(modules) == {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg._util"}
    assert import_edges(modules, "pkg") == {"pkg.a", "pkg.sub"}
    assert import_edges(modules, "pkg.b") == {"pkg.sub.c"}  # the TYPE_CHECKING import left out
    assert import_edges(modules, "pkg.sub.c") == {"pkg._util"}
    assert import_cycles(modules) == []
    assert long_modules(modules) == [] and long_functions(modules) == []
    assert private_uses(modules) == []


def test_cycles_are_found_through_function_level_imports(tmp_path):
    modules = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import g\n",
        "pkg/b.py": "def g():\n    from pkg import a\n    return a\n",
        "pkg/c.py": "from . import d\n",
        "pkg/d.py": "from .e import h\n",
        "pkg/e.py": "import pkg.c\nh = 1\n",
    })
    assert import_cycles(modules) == ["pkg.a -> pkg.b -> pkg.a",
                                      "pkg.c -> pkg.d -> pkg.e -> pkg.c"]


def test_importing_the_own_package_init_is_a_cycle(tmp_path):
    modules = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "import pkg\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "from pkg.sub import VERSION\n",
        "pkg/sub/c.py": "from pkg.sub import b\n",  # the module b only: no cycle
    })
    assert import_cycles(modules) == ["pkg => pkg.a -> pkg",
                                      "pkg.sub => pkg.sub.b -> pkg.sub"]


def test_long_modules_and_functions_are_flagged_with_their_size(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(79)) + "    return x0\n"  # 80 lines
    modules = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": (f"@staticmethod\ndef at_limit():\n{body}\n"
                     f"class K:\n    @property\n    def over(self):\n"
                     + body.replace("    ", "        ") + "        return 1\n"),
        "pkg/b.py": "x = 1\n" * 501,
        "pkg/c.py": "x = 1\n" * 500,
    })
    # at_limit: def + 80 body lines = 81; K.over: def + 81 = 82 (decorators not counted).
    assert long_functions(modules, limit=81) == ["pkg.a.K.over: 82 lines"]
    assert long_functions(modules) == ["pkg.a.at_limit: 81 lines", "pkg.a.K.over: 82 lines"]
    assert long_modules(modules) == ["pkg.b: 501 lines"]


def test_private_names_taken_from_other_modules_are_flagged(tmp_path):
    modules = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def _helper():\n    return 1\n\nclass Thing:\n    def __init__(self):\n"
                    "        self._hidden = 1\n",
        "pkg/b.py": "from pkg import a\nfrom pkg.a import _helper, Thing\n\n"
                    "class User:\n    def __init__(self):\n        self.thing = Thing()\n"
                    "        self._own = a._helper()\n\n    def use(self):\n"
                    "        return self.thing._hidden + self._own + self.__class__.__name__\n",
    })
    assert private_uses(modules) == [
        "pkg.b:2: from pkg.a import _helper",
        "pkg.b:7: a._helper (defined in pkg.a)",
        "pkg.b:10: self.thing._hidden (defined in pkg.a)",
    ]
