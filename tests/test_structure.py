"""The architecture, checked: the floors of the package (docs/README.md), one place per extension.

Each top-level unit of npae (a subpackage such as ``nn`` or a root module such as ``core``) has
a floor; a module imports only from its own unit and from lower floors, at module level or
inside a function (an import under ``if TYPE_CHECKING:`` is an annotation, not an arrow).
So nn never imports models, files, data or cli, nothing imports cli, and there is no cycle.
"""

import ast
import importlib
import pathlib
import pkgutil
import re

import numpy as np
import pytest

import npae
from npae._deprecated import MOVED
from npae.checks import suite
from npae.converters import CONVERTERS
from npae.core import LAYERS
from npae.nn import reference
from npae.nn.kernels import COL2IM, KERNELS

ROOT = pathlib.Path(npae.__file__).parent
#: the floors, bottom up; a unit may import its own modules and those of lower floors
FLOORS = [
    {"_version", "_checks", "_files", "registry", "converters"},  # no npae imports at all
    {"core", "init"},
    {"nn"},
    {"objectives", "optim"},
    {"models"},
    {"checks", "files"},
    {"data", "train"},  # data reads .npz archives through files.npz
    {"cli"},
    {"_deprecated"},  # the old paths of 0.2 and names of 0.1, imported only by the front door
    {"__init__", "__main__"},  # the package's front door
]
FLOOR = {unit: i for i, units in enumerate(FLOORS) for unit in units}
MAX_LINES = 400


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def unit(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """The lines of ``if TYPE_CHECKING:`` blocks (exactly that test: ``if not TYPE_CHECKING:`` runs)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for child in node.body:
                lines.update(range(child.lineno, child.end_lineno + 1))
    return lines


def imports_in(source: str, module: str, is_package: bool = False) -> set[str]:
    """The npae modules that the code ``source`` of ``module`` imports (a name imported from a package
    that is a submodule counts as that submodule)."""
    tree = ast.parse(source)
    skip = _type_checking_lines(tree)
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "npae"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "npae":
                target = node.module
            else:
                continue
            subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES}
            found |= subs or {target}
            if subs and len(subs) < len(node.names):
                found.add(target)
    return {resolve(m, module) for m in found} - {module}


def resolve(target: str, module: str) -> str:
    """The module an import reaches: itself, or for an old path of 0.2 (``npae.conv``) the alias
    module npae._deprecated, on the top floor; anything else under npae is an error in the test's reading."""
    if target in MODULES:
        return target
    head = target.split(".")
    if len(head) >= 2 and head[1] in MOVED:
        return "npae._deprecated"
    while head and ".".join(head) not in MODULES:
        head = head[:-1]
    assert head, f"{module} imports {target}, which is no module of npae"
    return ".".join(head)


def imports(module: str) -> set[str]:
    path = MODULES[module]
    return imports_in(path.read_text(), module, path.name == "__init__.py")


GRAPH = {m: imports(m) for m in MODULES}


def test_every_unit_has_a_floor():
    assert {unit(m) for m in MODULES} <= set(FLOOR), sorted({unit(m) for m in MODULES} - set(FLOOR))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_arrow_goes_up_a_floor(module):
    up = sorted(t for t in GRAPH[module]
                if unit(t) != unit(module) and FLOOR[unit(t)] >= FLOOR[unit(module)])
    assert not up, f"{module} (floor {FLOOR[unit(module)]}) imports {up}, on its floor or above"


def test_the_promises_the_floors_make():
    for module, targets in GRAPH.items():
        if unit(module) == "nn":
            assert not {unit(t) for t in targets} & {"models", "files", "data", "cli"}, module
        if unit(module) not in ("cli", "__main__"):
            assert not any(unit(t) == "cli" for t in targets), f"{module} imports the command line"


def test_no_cycle():
    state = {}

    def visit(m, path):
        state[m] = "open"
        for t in sorted(GRAPH[m]):
            if state.get(t) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(t):] + [t]))
            if t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_longer_than_an_afternoon_allows(module):
    n = len(MODULES[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{module}: {n} lines (at most {MAX_LINES}: split it where its docstring has two topics)"


def test_the_checker_sees_arrows():
    """The graph is read right (a parser that saw no arrow would pass every floor)."""
    assert {"npae.core", "npae.nn.kernels", "npae.nn.windows"} <= GRAPH["npae.nn.conv"]
    assert "npae.models.model" in GRAPH["npae.models.autoencoders"]
    assert "npae.files.io" in GRAPH["npae.cli.main"]  # imported inside a function: an arrow all the same
    source = ("from typing import TYPE_CHECKING\nfrom ..core import Layer\nfrom .. import init, nn\n"
              "if TYPE_CHECKING:\n    from ..models.model import Model\n"
              "def f():\n    from ..files import io\n")
    assert imports_in(source, "npae.nn.conv") == {"npae.core", "npae.init", "npae.nn", "npae.files.io"}
    # an old path is an arrow to the aliases on the top floor; `if not TYPE_CHECKING:` runs
    assert imports_in("from ..conv_kernels import Scratch\nimport npae.io as io\n", "npae.nn.conv") == \
        {"npae._deprecated"}
    assert imports_in("from typing import TYPE_CHECKING\nif not TYPE_CHECKING:\n    from ..files import io\n",
                      "npae.nn.conv") == {"npae.files.io"}
    assert imports_in("from npae import Conv2D\n", "npae.nn.conv") == {"npae"}  # the front door: top floor

# -- one place per extension -------------------------------------------------------------------
def test_every_registered_layer_has_a_torch_converter():
    """Without torch: a layer whose converter is missing would pass every other test on a machine
    without torch and fail only at export."""
    assert set(LAYERS) == set(CONVERTERS), f"no converter: {sorted(set(LAYERS) - set(CONVERTERS))}"


def test_every_loop_definition_is_claimed_and_checked():
    """Each layer that names loop definitions (Layer.reference) names real ones, every public loop in
    npae.nn.reference belongs to a layer, and the gradcheck suite holds each such layer to them."""
    helpers = {"pads", "pad_image"}
    loops = {n for n, f in vars(reference).items() if callable(f) and not n.startswith("_")
             and getattr(f, "__module__", "") == reference.__name__} - helpers
    claimed = {}
    for name, cls in LAYERS.items():
        for fn in cls.reference:
            assert fn in loops, f"{name}.reference names {fn}, which npae.nn.reference does not define"
            claimed[fn] = name
    assert loops == set(claimed), f"loops no layer claims: {sorted(loops - set(claimed))}"
    titles = [title for title, _ in suite._reference_checks(np.random.default_rng(0))]
    for name in set(claimed.values()):
        assert any(re.search(rf"\b{name}\b", t) for t in titles), f"the suite checks no {name} against its loops"


def test_every_conv_kernel_is_held_to_the_loops_by_the_suite():
    reports = [thunk() for title, thunk in suite._reference_checks(np.random.default_rng(0)) if "Conv2D" in title]
    ran = {name for name in KERNELS for r in reports if f": {name} kernel = reference" in r.title}
    assert ran == set(KERNELS), f"kernels the suite never runs: {sorted(set(KERNELS) - ran)}"
    assert all(r.passed for r in reports)


def test_every_module_of_models_is_imported_so_its_families_register():
    for info in pkgutil.iter_modules(npae.models.__path__):
        assert f"npae.models.{info.name}" in importlib.sys.modules, info.name


def test_the_reading_order_in_docs_lists_every_module():
    """docs/README.md's reading order names every module of the package exactly once (private ones
    and the old-path aliases aside), so it cannot fall behind a move. A folder whose further
    modules are extensions (``npae/models/*.py``: a family each) is named once by that pattern."""
    text = (ROOT.parent / "docs" / "README.md").read_text()
    section = text[text.index("## Reading order"):]
    listed = re.findall(r"`(npae/[\w/]+\.py)`", section)
    patterns = re.findall(r"`(npae/[\w/]+)/\*\.py`", section)
    expected = {str(p.relative_to(ROOT.parent)) for p in MODULES.values()
                if not p.name.startswith("_") or p.name.startswith("__")}  # private helpers aside
    assert len(listed) == len(set(listed)), [p for p in listed if listed.count(p) > 1]
    missing = {m for m in expected - set(listed) if not any(m.startswith(f"{folder}/") for folder in patterns)}
    assert not missing, f"not in the reading order: {sorted(missing)}"
    assert set(listed) <= expected, f"listed, but no such module: {sorted(set(listed) - expected)}"


def test_docs_name_every_kernel_and_when_it_runs():
    text = (ROOT.parent / "docs" / "layers.md").read_text()
    table = text_under(text, "### Which code computes it: the kernel table")
    named = re.findall(r"^\| `(\w+)` \|", table, flags=re.M)  # in the order the rule tries them
    assert sorted(named) == sorted(KERNELS), f"docs/layers.md's kernel table names {named}; KERNELS has {list(KERNELS)}"
    # ConvTranspose2D's: every kernel its rule can pick, none other (npae.nn.kernels.choose_transpose_kernel)
    transposed = text_under(text[text.index("## ConvTranspose2D"):], "### Which code computes it")
    rows = re.findall(r"^\| ((?:`\w+`(?:, )?)+) \|", transposed, flags=re.M)
    named = {name for row in rows for name in re.findall(r"`(\w+)`", row)}
    assert named == {COL2IM, "winograd", "winograd4", "per_sample", "flat"}, named


def text_under(text: str, heading: str) -> str:
    """``text`` from ``heading`` to the next heading."""
    start = text.index(heading)
    following = re.search(r"^#", text[start + len(heading):], flags=re.M)
    return text[start:start + len(heading) + following.start()] if following else text[start:]
