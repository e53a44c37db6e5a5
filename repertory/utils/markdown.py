"""Markdown output for result tables."""

from typing import Any

import numpy as np
import pandas as pd


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4g", index: bool = True) -> str:
  """A GitHub pipe table: `DataFrame.to_markdown` when tabulate is installed, else a plain one."""
  try:
    import tabulate  # noqa: F401
  except ImportError:
    tabulate = None
  if tabulate is not None:
    blanks = df.astype(object).where(df.notna(), None)  # tabulate's missingval applies to None only.
    blanks.index = df.index
    return blanks.to_markdown(floatfmt=floatfmt, index=index, missingval="")

  def cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
      return "" if np.isnan(value) else format(float(value), floatfmt)
    return str(value).replace("|", "\\|")

  header = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
  for label, row in df.iterrows():
    cells = ([cell(label)] if index else []) + [cell(v) for v in row.tolist()]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)
