"""A run's plasticity diagnostics (the `diagnostics` rows of metrics.csv) drawn against learner updates.

One panel per family of columns the diagnostics write (`repertory.plasticity.diagnostics`): effective rank,
dormant fractions per layer, the plasticity probe's loss, linear-probe R² per layer, and weight / gradient /
update norms per module (log scale). A family with no column is left out.
"""

import os
from typing import List, Optional, Tuple

import pandas as pd

from repertory.utils import plotting

# (title, column prefix or name, log scale)
PANELS: Tuple[Tuple[str, str, bool], ...] = (
    ("effective rank srank", "srank", False),
    ("dormant fraction", "dormant/", False),
    ("plasticity probe loss", "probe_loss", False),
    ("linear probe R² (below −1 drawn at −1)", "linear_probe_r2/", False),
    ("weight norm", "weight_norm/", True),
    ("gradient norm", "grad_norm/", True),
    ("update norm", "update_norm/", True),
)


def _columns(df: pd.DataFrame, prefix: str) -> List[str]:
  if not prefix.endswith("/"):
    return [prefix] if prefix in df.columns else []
  return sorted(c for c in df.columns if c.startswith(prefix))


def plot_diagnostics(metrics_csv: plotting.PathLike, out_png: plotting.PathLike, title: Optional[str] = None) -> Optional[str]:
  """The diagnostics panels as a PNG at `out_png`; None (no file) when metrics.csv has no diagnostics rows."""
  df = plotting._read_metrics(metrics_csv)
  if df is None or "source" not in df.columns or "learner_steps" not in df.columns:
    return None
  rows = df[df["source"] == "diagnostics"]
  if rows.empty:
    return None
  steps = pd.to_numeric(rows["learner_steps"], errors="coerce")
  panels = [(name, _columns(rows, prefix), log) for name, prefix, log in PANELS]
  panels = [p for p in panels if p[1]]
  if not panels:
    return None
  plt = plotting._pyplot()
  columns = min(3, len(panels))
  fig_rows = (len(panels) + columns - 1) // columns
  fig, axes = plt.subplots(fig_rows, columns, figsize=(5 * columns, 3.3 * fig_rows), squeeze=False)
  for ax, (name, names, log) in zip(axes.flat, panels):
    for column in names:
      values = pd.to_numeric(rows[column], errors="coerce")
      if column.startswith("linear_probe_r2/"):  # held-out R² of an overfit probe can be far below 0
        values = values.clip(lower=-1.0)
      label = column.split("/", 1)[1] if "/" in column else column
      ax.plot(steps, values, "o-", ms=3, lw=1.2, label=label)
    ax.set_title(name, fontsize="medium")
    ax.set_xlabel("learner updates")
    if log:
      ax.set_yscale("log")
    if names[0].startswith("linear_probe_r2/"):
      ax.set_ylim(-1.05, 1.05)
    ax.grid(alpha=0.3)
    if len(names) > 1:
      ax.legend(fontsize="x-small", loc="best")
  for ax in list(axes.flat)[len(panels):]:
    ax.axis("off")
  if title is None:
    title = os.path.basename(os.path.dirname(os.path.abspath(os.fspath(metrics_csv)))) or None
  if title:
    fig.suptitle(f"{title}: plasticity diagnostics")
  fig.tight_layout()
  return plotting._save(fig, out_png)
