"""Every file a docstring or comment in `repertory/` points to is inside the repository."""

import ast
import io
import pathlib
import re
import tokenize

ROOT = pathlib.Path(__file__).resolve().parents[2]
PATH = re.compile(r"\b((?:repertory|docs|tests|benchmarks)/[A-Za-z0-9_./-]*[A-Za-z0-9_])")
DOCUMENT = re.compile(r"\b([A-Z][A-Z_]+\.md)\b")
WRITTEN_BY_BENCHMARKS = {"RESULTS.md"}  # report files the benchmarks write into their --out


def _texts(path: pathlib.Path):
  source = path.read_text()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
      yield ast.get_docstring(node) or ""
  for token in tokenize.generate_tokens(io.StringIO(source).readline):
    if token.type == tokenize.COMMENT:
      yield token.string


def _dangling():
  documents = {p.name for p in ROOT.glob("*.md")} | {p.name for p in (ROOT / "docs").glob("*.md")}
  for path in sorted((ROOT / "repertory").rglob("*.py")):
    for text in _texts(path):
      for reference in PATH.findall(text):
        if not (ROOT / reference.rstrip(".")).exists():
          yield f"{path.relative_to(ROOT)}: {reference}"
      for name in DOCUMENT.findall(text):
        if name not in documents and name not in WRITTEN_BY_BENCHMARKS:
          yield f"{path.relative_to(ROOT)}: {name}"


def test_docstrings_and_comments_point_inside_the_repository():
  assert list(_dangling()) == []


def test_the_methods_documentation_names_modules_that_exist():
  text = (ROOT / "docs" / "methods.md").read_text()
  missing = [ref for ref in PATH.findall(text) if not (ROOT / ref.rstrip(".")).exists()]
  assert missing == [] and "METHODS.md" not in text
