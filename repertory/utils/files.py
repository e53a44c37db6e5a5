"""Files replaced atomically (a reader, or a crash, never leaves half of one) and numbered files kept to the last few."""

import contextlib
import json
import os
import threading
from typing import Any, Iterator, List


@contextlib.contextmanager
def replaced_atomically(path: str, mode: str = "w", **open_kwargs) -> Iterator[Any]:
  """Opens a temporary file beside `path`; moves it over `path` when the block ends, or removes it on an error."""
  tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
  try:
    with open(tmp, mode, **open_kwargs) as f:
      yield f
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_json(path: str, record: Any, **dump_kwargs) -> None:
  with replaced_atomically(path) as f:
    json.dump(record, f, **dump_kwargs)


def numbered(directory: str, suffix: str = "") -> List[int]:
  """The numbers N of the entries named `N<suffix>` in `directory`, smallest first ([] without the directory)."""
  if not os.path.isdir(directory):
    return []
  names = (name[:len(name) - len(suffix)] for name in os.listdir(directory) if name.endswith(suffix))
  return sorted(int(name) for name in names if name.isdigit())
