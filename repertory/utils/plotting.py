"""Plots for runs and reports: learning curves, curves with CIs, per-game bars, aggregate intervals.

Every function writes a PNG with matplotlib's Agg backend (selected inside the function, so importing
this module never touches matplotlib's global state), closes its figure and returns the path.
Interval plots follow rliable's `plot_interval_estimates` (Agarwal et al. 2021, arXiv 2108.13264).
"""

import os
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from repertory.errors import ConfigError

PathLike = Any  # str or os.PathLike.


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _save(fig, out_png: PathLike) -> str:
  plt = _pyplot()
  out_png = os.fspath(out_png)
  directory = os.path.dirname(out_png)
  if directory:
    os.makedirs(directory, exist_ok=True)
  try:
    fig.savefig(out_png, dpi=110, bbox_inches="tight")
  finally:
    plt.close(fig)
  return out_png


def _no_data(out_png: PathLike, title: Optional[str], message: str = "no data yet") -> str:
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 3.5))
  ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, color="0.4", transform=ax.transAxes, wrap=True)
  ax.set_xticks([])
  ax.set_yticks([])
  if title:
    ax.set_title(title)
  return _save(fig, out_png)


def _read_metrics(metrics_csv: PathLike) -> Optional[pd.DataFrame]:
  """metrics.csv as strings (blank cells NaN); None when absent or unreadable (e.g. half-written)."""
  try:
    return pd.read_csv(metrics_csv, dtype=str, on_bad_lines="skip")
  except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
    return None


def _series(df: pd.DataFrame, source: str, x: str, y: str) -> pd.DataFrame:
  rows = df[df["source"] == source]
  out = pd.DataFrame({"x": pd.to_numeric(rows[x], errors="coerce"), "y": pd.to_numeric(rows[y], errors="coerce")})
  return out.dropna().sort_values("x", kind="stable")


def plot_learning_curve(metrics_csv: PathLike, out_png: PathLike, x: str = "actor_steps", y: str = "episode_return",
                        title: Optional[str] = None, smoothing: int = 20) -> str:
  """Actor returns (light, with a rolling mean) and evaluator returns (markers) against `x`.

  `metrics_csv` is a run's metrics.csv (`repertory.utils.loggers.MetricsWriter`): a `source` column
  (actor / learner / evaluator) and many columns with blanks. A missing file or column, or no numeric
  rows yet, gives a plot that says "no data yet" instead of an error.
  """
  if title is None:
    title = os.path.basename(os.path.dirname(os.path.abspath(os.fspath(metrics_csv)))) or None
  df = _read_metrics(metrics_csv)
  if df is None or not {"source", x, y} <= set(df.columns):
    return _no_data(out_png, title)
  actor, evaluator = _series(df, "actor", x, y), _series(df, "evaluator", x, y)
  if actor.empty and evaluator.empty:
    return _no_data(out_png, title)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7, 4))
  if not actor.empty:
    ax.plot(actor["x"], actor["y"], color="tab:blue", alpha=0.25, lw=0.8, label="actor episodes")
    window = max(1, min(smoothing, len(actor) // 5 or 1))
    smooth = actor["y"].rolling(window, min_periods=1).mean()
    ax.plot(actor["x"], smooth, color="tab:blue", lw=1.8, label=f"actor (rolling mean of {window})")
  if not evaluator.empty:
    ax.plot(evaluator["x"], evaluator["y"], "o-", color="tab:orange", ms=5, lw=1, label="evaluator")
  ax.set_xlabel(x)
  ax.set_ylabel(y)
  if title:
    ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(loc="best", fontsize="small")
  return _save(fig, out_png)


def _mean_ci(values: np.ndarray, reps: int, rng: np.random.RandomState, confidence: float):
  """Mean over seeds (rows) and a percentile bootstrap CI over seeds, per column (step)."""
  mean = np.nanmean(values, axis=0)
  if values.shape[0] < 2:
    return mean, mean, mean
  idx = rng.randint(0, values.shape[0], size=(reps, values.shape[0]))
  with warnings.catch_warnings():  # steps that only some seeds reached: resamples of missing values are NaN.
    warnings.simplefilter("ignore", RuntimeWarning)
    boot = np.nanmean(values[idx], axis=1)  # [reps, steps]
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(boot, [tail, 100 - tail], axis=0)
  return mean, low, high


def plot_curves_with_ci(curves: pd.DataFrame, out_png: PathLike, title: Optional[str] = None, value: str = "return",
                        reps: int = 1000, seed: int = 0, confidence: float = 0.95, xlabel: str = "step",
                        marks: Sequence[float] = ()) -> str:
  """Mean over seeds with a shaded 95% bootstrap CI (over seeds) per variant; dashed vertical lines at `marks`.

  `curves` has columns variant, seed, step and `value`. Seeds logged at different steps are aligned by
  linear interpolation onto the union of steps, within each seed's own range (no extrapolation).
  """
  needed = {"variant", "seed", "step", value}
  if curves is None or not needed <= set(curves.columns):
    if curves is not None and len(curves.columns):
      raise ConfigError(f"plot_curves_with_ci needs columns {sorted(needed)}; has {list(curves.columns)}")
    return _no_data(out_png, title)
  df = curves[list(needed)].copy()
  df["step"] = pd.to_numeric(df["step"], errors="coerce")
  df[value] = pd.to_numeric(df[value], errors="coerce")
  df = df.dropna()
  if df.empty:
    return _no_data(out_png, title)
  plt = _pyplot()
  rng = np.random.RandomState(seed)
  fig, ax = plt.subplots(figsize=(7, 4))
  for variant, group in df.groupby("variant", sort=True):
    steps = np.unique(group["step"].to_numpy(float))
    rows = []
    for _, run in group.groupby("seed"):
      run = run.groupby("step")[value].mean()
      xs, ys = run.index.to_numpy(float), run.to_numpy(float)
      rows.append(np.where((steps >= xs[0]) & (steps <= xs[-1]), np.interp(steps, xs, ys), np.nan))
    values = np.stack(rows)
    mean, low, high = _mean_ci(values, reps, rng, confidence)
    n = len(rows)
    (line,) = ax.plot(steps, mean, lw=1.8, label=f"{variant} (n={n})")
    ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
  for mark in marks:
    ax.axvline(mark, color="0.5", ls="--", lw=0.8)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(value)
  if title:
    ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(loc="best", fontsize="small")
  return _save(fig, out_png)


def plot_per_game_vs_published(table: pd.DataFrame, out_png: PathLike, normalized: bool = True,
                               published: Optional[Sequence[str]] = None, title: Optional[str] = None) -> str:
  """Grouped bars per game: our score(s) next to published ones (DER, DrQ(ε), SPR, A-LIX by default).

  `table` is `scores.published_comparison(...)`; aggregate rows (not games) are left out. With
  `normalized` the bars are HNS (`hns_<column>`), else raw scores (log-free, so mostly useful per game).
  """
  from repertory.utils import scores

  if table is None or table.empty:
    return _no_data(out_png, title)
  games = [g for g in table.index if g in set(scores.atari_games())]
  if not games:
    return _no_data(out_png, title)
  published = list(published) if published is not None else [c for c in scores.PUBLISHED_COLUMNS if c in table.columns]
  ours = [c for c in table.columns if c not in scores.PUBLISHED_COLUMNS and c not in ("random", "human")
          and not str(c).startswith("hns_")]
  columns = ours + published
  data = table.loc[games, [f"hns_{c}" if normalized else c for c in columns]].to_numpy(float)
  plt = _pyplot()
  width = 0.8 / max(1, len(columns))
  fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(games) * max(1, len(columns)) ** 0.5 + 2), 4.5))
  positions = np.arange(len(games))
  for i, column in enumerate(columns):
    label = scores.DISPLAY_NAMES.get(column, column)
    kwargs = {"edgecolor": "black", "linewidth": 0.6} if column in ours else {"alpha": 0.75}
    ax.bar(positions + (i - (len(columns) - 1) / 2) * width, np.nan_to_num(data[:, i]), width, label=label, **kwargs)
  if normalized:
    ax.axhline(1.0, color="0.3", ls="--", lw=0.8)
    ax.axhline(0.0, color="0.3", lw=0.6)
  ax.set_xticks(positions)
  ax.set_xticklabels(games, rotation=60, ha="right", fontsize="small")
  ax.set_ylabel("human-normalised score" if normalized else "score")
  if title:
    ax.set_title(title)
  ax.grid(alpha=0.3, axis="y")
  ax.legend(fontsize="small", ncol=min(len(columns), 5))
  return _save(fig, out_png)


def plot_aggregate_intervals(aggregate: pd.DataFrame, out_png: PathLike, title: Optional[str] = None,
                             xlabel: str = "human-normalised score") -> str:
  """rliable-style interval plot: one panel per metric, a CI bar and a point-estimate tick per algorithm.

  `aggregate` is `scores.aggregate_scores(...)` (columns algorithm, metric, value, ci_low, ci_high).
  """
  needed = {"algorithm", "metric", "value", "ci_low", "ci_high"}
  if aggregate is None or aggregate.empty or not needed <= set(aggregate.columns):
    return _no_data(out_png, title)
  names = {"mean": "Mean", "median": "Median", "iqm": "IQM", "optimality_gap": "Optimality Gap"}
  metrics = list(dict.fromkeys(aggregate["metric"]))
  algorithms = list(dict.fromkeys(aggregate["algorithm"]))
  plt = _pyplot()
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 0.5 * len(algorithms) + 1.2), squeeze=False)
  for j, metric in enumerate(metrics):
    ax = axes[0, j]
    for i, algorithm in enumerate(algorithms):
      row = aggregate[(aggregate["metric"] == metric) & (aggregate["algorithm"] == algorithm)]
      if row.empty:
        continue
      row = row.iloc[0]
      color = colors[i % len(colors)]
      ax.barh(i, row["ci_high"] - row["ci_low"], height=0.6, left=row["ci_low"], color=color, alpha=0.75)
      ax.vlines(row["value"], i - 0.3, i + 0.3, color="k", alpha=0.6)
    ax.set_yticks(range(len(algorithms)))
    ax.set_yticklabels(algorithms if j == 0 else [])
    ax.tick_params(axis="y", left=False)
    ax.set_ylim(-0.6, len(algorithms) - 0.4)
    ax.set_title(names.get(metric, metric))
    ax.xaxis.set_major_locator(plt.MaxNLocator(4))
    ax.grid(alpha=0.25, axis="x")
    for side in ("top", "right", "left"):
      ax.spines[side].set_visible(False)
  fig.supxlabel(xlabel)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return _save(fig, out_png)


def plot_sections(rows, path: str, title: str) -> str:
  """Rows with section / measurement / value / unit (the throughput and device benchmarks'), one panel per
  section in the order they first appear: horizontal bars from zero, each labelled with its value and unit.
  Rows without a finite value are left out."""
  import math
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  rows = [r for r in rows if math.isfinite(float(r["value"]))]
  sections = list(dict.fromkeys(r["section"] for r in rows)) or ["no finite measurement"]
  fig, axes = plt.subplots(len(sections), 1, figsize=(9, 2.2 + 0.45 * len(rows)), squeeze=False)
  for ax, section in zip(axes[:, 0], sections):
    chosen = [r for r in rows if r["section"] == section]
    values = [float(r["value"]) for r in chosen]
    ax.barh(range(len(chosen)), values, color="tab:blue")
    ax.set_yticks(range(len(chosen)), [r["measurement"] for r in chosen], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(values + [1e-9]) * 1.35)
    for i, (value, row) in enumerate(zip(values, chosen)):
      ax.text(value, i, f"  {value:,.1f} {row['unit']}", va="center", fontsize=7)
    ax.set_title(section, fontsize=9, loc="left")
    ax.tick_params(axis="x", labelsize=7)
  fig.suptitle(title, fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
