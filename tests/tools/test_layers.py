"""The layering and module-size rules of `repertory.tools.layers`, on the package and on small trees."""

import pathlib
import subprocess
import sys

from repertory.tools import layers


def _tree(tmp_path: pathlib.Path, files: dict) -> pathlib.Path:
  root = tmp_path / "repertory"
  for name, text in files.items():
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
  return root


def test_the_package_keeps_its_layers_and_sizes():
  assert layers.layer_violations() == []
  assert layers.size_violations() == []


def test_a_lower_layer_importing_a_higher_one_is_reported_with_its_line(tmp_path):
  root = _tree(tmp_path, {
      "replay/__init__.py": "",
      "replay/table.py": "import numpy\n\ndef f():\n  from repertory.agents.dqn import builder\n",
      "replay/other.py": "from repertory import agents\n",
      "replay/relative.py": "from ..launch import cli\n",
      "agents/__init__.py": "from repertory.replay import table\n",  # downwards: allowed
      "launch/__init__.py": "", "launch/cli.py": "from repertory.agents import builder\n",
  })
  problems = layers.layer_violations(root)
  assert len(problems) == 3
  assert any("replay/table.py:4" in p and "repertory.agents.dqn" in p for p in problems)
  assert any("replay/other.py:1" in p for p in problems)
  assert any("replay/relative.py:1" in p and "repertory.launch" in p for p in problems)


def test_an_unknown_subpackage_must_be_given_a_layer(tmp_path):
  root = _tree(tmp_path, {"plugins/__init__.py": ""})
  assert ["has no layer" in p for p in layers.layer_violations(root)] == [True]


def test_a_long_module_needs_its_reason_at_the_top(tmp_path):
  body = "x = 1\n" * 40
  root = _tree(tmp_path, {
      "utils/long.py": '"""Long."""\n' + body,
      "utils/explained.py": '"""Long, but over 300 lines on purpose: one lock guards it all."""\n' + body,
      "utils/short.py": body[:60],
  })
  problems = layers.size_violations(root, max_lines=30)
  assert len(problems) == 1 and "utils/long.py: 41 lines" in problems[0]


def test_the_command_exits_zero_on_the_package():
  done = subprocess.run([sys.executable, "-m", "repertory.tools.layers"], capture_output=True, text=True, timeout=60)
  assert done.returncode == 0, done.stdout + done.stderr
  assert "ok" in done.stdout
