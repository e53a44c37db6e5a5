import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_collection_modifyitems(config, items):
  """Files with slow tests first, each file's tests in their order: with `--dist loadfile` the files handed
  out last decide when a leg's parallel part ends, so the long ones should not come last."""
  slow_files = {item.path for item in items if item.get_closest_marker("slow")}
  items.sort(key=lambda item: item.path not in slow_files)
