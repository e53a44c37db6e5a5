import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from launch_helpers import run_cli  # noqa: E402


@pytest.fixture
def cli():
  return run_cli
