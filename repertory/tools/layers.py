"""`python -m repertory.tools.layers`: the package's layering and module-size rules, checked.

Layers, lowest first; a module may import its own layer and the ones below, never one above:
  0 foundation   errors, data, utils
  1 parts        environments, networks, losses, replay, plasticity
  2 agents       agents
  3 programs     launch, tools
  4 benchmarks   benchmarks
  5 command line cli (the `repertory` command)
Imports are read from the source (every `import` / `from ... import`, also those inside functions,
which is where the heavy imports are kept), so nothing is imported to check it.

A module over `MAX_LINES` lines says why at its top with the phrase "over 300 lines on purpose".
Exit status 0 when both rules hold, 1 with one line per violation otherwise.
"""

import ast
import pathlib
import sys
from typing import Dict, Iterator, List, Optional, Tuple

LAYERS: Dict[str, int] = {
    "errors": 0, "data": 0, "utils": 0,
    "environments": 1, "networks": 1, "losses": 1, "replay": 1, "plasticity": 1,
    "agents": 2,
    "launch": 3, "tools": 3,
    "benchmarks": 4,
    "cli": 5,
}
LAYER_NAMES = ("foundation", "parts", "agents", "programs", "benchmarks", "command line")
MAX_LINES = 300
SIZE_REASON = "over 300 lines on purpose"
PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _subpackage(module: str) -> Optional[str]:
  """'repertory.replay.table' → 'replay'; None for the package root and for other packages."""
  parts = module.split(".")
  if parts[0] != "repertory" or len(parts) < 2:
    return None
  return parts[1]


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
  relative = path.relative_to(root.parent).with_suffix("")
  parts = list(relative.parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> Iterator[Tuple[int, str]]:
  """(line, absolute module name) for every import in `source`, relative imports resolved."""
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield node.lineno, alias.name
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
      else:
        target = node.module or ""
      yield node.lineno, target
      for alias in node.names:  # `from repertory import agents` imports a subpackage
        yield node.lineno, f"{target}.{alias.name}"


def layer_violations(root: pathlib.Path = PACKAGE_ROOT) -> List[str]:
  problems = []
  for path in sorted(root.rglob("*.py")):
    module = _module_name(path, root)
    own = _subpackage(module)
    if own is None:
      continue
    if own not in LAYERS:
      problems.append(f"{path.relative_to(root.parent)}: subpackage '{own}' has no layer in {__name__}.LAYERS")
      continue
    reported = set()
    for line, target in imported_modules(path.read_text(), module, path.name == "__init__.py"):
      other = _subpackage(target)
      if other in LAYERS and LAYERS[other] > LAYERS[own] and (line, other) not in reported:
        reported.add((line, other))
        problems.append(f"{path.relative_to(root.parent)}:{line}: {own} ({LAYER_NAMES[LAYERS[own]]}) imports "
                        f"{target} ({LAYER_NAMES[LAYERS[other]]}), a higher layer")
  return problems


def size_violations(root: pathlib.Path = PACKAGE_ROOT, max_lines: int = MAX_LINES) -> List[str]:
  problems = []
  for path in sorted(root.rglob("*.py")):
    text = path.read_text()
    lines = text.count("\n")
    if lines <= max_lines:
      continue
    docstring = ast.get_docstring(ast.parse(text)) or ""
    if SIZE_REASON not in docstring.lower():
      problems.append(f"{path.relative_to(root.parent)}: {lines} lines (> {max_lines}) and its docstring does "
                      f"not say why ('{SIZE_REASON}'); split it or state the reason")
  return problems


def main(argv: Optional[List[str]] = None) -> int:
  del argv
  problems = layer_violations() + size_violations()
  for problem in problems:
    print(problem)
  if not problems:
    print(f"layers and module sizes ok ({len(list(PACKAGE_ROOT.rglob('*.py')))} modules)")
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
