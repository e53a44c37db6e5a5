"""Atari 100k aggregate metrics and comparison tables for reporting results.

Human-normalised scores come from `atari_reference` (the random / human / published table); the
aggregates following Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice"
(arXiv 2108.13264): mean, median and interquartile mean (IQM, 25% trimmed mean over all runs x games)
with 95% percentile stratified-bootstrap confidence intervals, computed with `rliable`.

Non-Atari benchmarks (memory tasks, control) report with `final_scores.final_score_table`.
"""

import functools
import math
import warnings
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from rliable import metrics as rly_metrics

from repertory.errors import ConfigError
from repertory.utils.atari_reference import (  # noqa: F401  (the reporting API re-exports the table's names)
    DEFAULT_COMPARISON, DISPLAY_NAMES, PUBLISHED_COLUMNS, atari_games, canonical_game, human_normalized,
    human_normalized_scores, load_atari_reference)
from repertory.utils.markdown import to_markdown  # noqa: F401

# rliable aggregate functions over a [runs, games] matrix (arXiv 2108.13264, Sec. 4).
AGGREGATE_METRICS: Dict[str, Callable[[np.ndarray], float]] = {
    "mean": rly_metrics.aggregate_mean,
    "median": rly_metrics.aggregate_median,
    "iqm": rly_metrics.aggregate_iqm,
    "optimality_gap": rly_metrics.aggregate_optimality_gap,
}

ScoreMatrix = Mapping[str, np.ndarray]


# ----------------------------------------------------------------------------------------------------------
# Aggregates with stratified-bootstrap confidence intervals.


@functools.lru_cache(maxsize=1)
def _rliable_library() -> Optional[Any]:
  try:
    from rliable import library
  except (ImportError, TypeError, AttributeError):  # arch 7.x fails to import with pandas >= 3.
    return None
  return library


def interval_estimates(score_dict: Mapping[str, np.ndarray], func: Callable[[np.ndarray], np.ndarray], reps: int,
                        seed: int, confidence: float) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
  """`rliable.library.get_interval_estimates` (percentile stratified bootstrap over runs within each task).

  rliable's `library` module imports `arch`; arch 7.x fails to import with pandas >= 3. In that case the
  same estimator (resample runs with replacement independently within each task, percentile interval)
  is computed here so that reports still come out; the point estimates are identical either way.
  """
  rly_library = _rliable_library()
  if rly_library is not None:
    # arch 7.2 deprecates (and does not honour) the random_state that rliable passes on; it draws from
    # NumPy's global generator, so seed that for the call and put its state back afterwards.
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
      with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return rly_library.get_interval_estimates(dict(score_dict), func, reps=reps,
                                                  confidence_interval_size=confidence)
    finally:
      np.random.set_state(saved)
  points, intervals = {}, {}
  for key, scores in score_dict.items():
    rng = np.random.RandomState(seed)
    runs, tasks = scores.shape
    stats = []
    for _ in range(reps):
      rows = rng.randint(0, runs, size=(runs, tasks))  # stratified: runs resampled within each task.
      stats.append(np.asarray(func(np.take_along_axis(scores, rows, axis=0)), dtype=float))
    stats = np.stack(stats)
    tail = 100 * (1 - confidence) / 2
    points[key] = np.asarray(func(scores), dtype=float)
    intervals[key] = np.percentile(stats, [tail, 100 - tail], axis=0)
  return points, intervals


def aggregate_scores(score_matrix: ScoreMatrix, reps: int = 2000, seed: int = 0,
                     metrics: Sequence[str] = ("mean", "median", "iqm"), confidence: float = 0.95) -> pd.DataFrame:
  """Aggregate metrics with 95% stratified-bootstrap CIs (rliable; Agarwal et al. 2021, arXiv 2108.13264).

  Args:
    score_matrix: algorithm -> [runs, games] array of (normally human-normalised) scores. rliable needs a
      full matrix: every game must have the same number of runs.
    reps: bootstrap replications (rliable's default is 50000; 2000 is enough for two-digit CIs).
    seed: seed of the bootstrap's RandomState.
    metrics: any of "mean", "median", "iqm", "optimality_gap".
    confidence: coverage of the percentile interval.

  Returns:
    Tidy DataFrame with columns algorithm, metric, value, ci_low, ci_high (one row per pair).
  """
  unknown = [m for m in metrics if m not in AGGREGATE_METRICS]
  if unknown:
    raise ConfigError(f"unknown aggregate metric(s) {unknown}; use any of {sorted(AGGREGATE_METRICS)}")
  if not score_matrix:
    raise ConfigError("aggregate_scores got no algorithms; pass {name: array of shape [runs, games]}")
  arrays = {}
  for name, scores in score_matrix.items():
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.size == 0 or not np.all(np.isfinite(scores)):
      raise ConfigError(f"scores of {name!r} must be a finite [runs, games] matrix, got shape {scores.shape}; "
                        "build one with score_matrix_from_results")
    arrays[name] = scores
  funcs = [AGGREGATE_METRICS[m] for m in metrics]
  func = lambda x: np.array([f(x) for f in funcs])  # noqa: E731
  points, intervals = interval_estimates(arrays, func, reps=reps, seed=seed, confidence=confidence)
  rows = []
  for name in arrays:
    for i, metric in enumerate(metrics):
      rows.append({"algorithm": name, "metric": metric, "value": float(points[name][i]),
                   "ci_low": float(intervals[name][0, i]), "ci_high": float(intervals[name][1, i])})
  return pd.DataFrame(rows, columns=["algorithm", "metric", "value", "ci_low", "ci_high"])


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
  missing = [c for c in columns if c not in df.columns]
  if missing:
    raise ConfigError(f"{what} needs columns {list(columns)}; missing {missing} (has {list(df.columns)})")


def score_matrix_from_results(results: pd.DataFrame, normalize: bool = True) -> Dict[str, np.ndarray]:
  """Long results (game, seed, score [, algorithm]) -> {algorithm: [runs, games]} for `aggregate_scores`.

  Runs are the seeds of each game in sorted order (the i-th seed of each game is run i); every game must
  have the same number of seeds. With `normalize`, scores are human-normalised.
  """
  require_columns(results, ("game", "seed", "score"), "score_matrix_from_results")
  df = results.copy()
  if "algorithm" not in df.columns:
    df["algorithm"] = "ours"
  df["game"] = [canonical_game(g) for g in df["game"]]
  df["score"] = pd.to_numeric(df["score"], errors="coerce")
  if normalize:
    df["score"] = human_normalized_scores(list(df["game"]), df["score"].to_numpy(float))
  out = {}
  for name, group in df.groupby("algorithm", sort=False):
    group = group.sort_values(["game", "seed"])
    group = group.assign(run=group.groupby("game").cumcount())
    matrix = group.pivot(index="run", columns="game", values="score")
    counts = group.groupby("game").size()
    if counts.nunique() != 1:
      raise ConfigError(f"{name!r}: games have different numbers of seeds ({counts.to_dict()}); "
                        "run every game with the same seeds or drop the extra ones")
    out[str(name)] = matrix.to_numpy(float)
  return out


# ----------------------------------------------------------------------------------------------------------
# Per-game tables.


def per_game_table(results: pd.DataFrame) -> pd.DataFrame:
  """Per game (and algorithm): seeds, mean, std (ddof=1) of raw scores over seeds, and the HNS of the mean.

  `results` has columns game, seed, score and optionally algorithm. Returns columns
  [algorithm,] game, seeds, mean, std, hns, hns_std, score (a "mean ± std" string), sorted by game.
  """
  require_columns(results, ("game", "seed", "score"), "per_game_table")
  df = results.copy()
  df["game"] = [canonical_game(g) for g in df["game"]]
  df["score"] = pd.to_numeric(df["score"], errors="coerce")
  df["hns"] = human_normalized_scores(list(df["game"]), df["score"].to_numpy(float))
  keys = ["algorithm", "game"] if "algorithm" in df.columns else ["game"]
  grouped = df.groupby(keys, sort=True)
  table = pd.DataFrame({
      "seeds": grouped["seed"].nunique(),
      "mean": grouped["score"].mean(),
      "std": grouped["score"].std(ddof=1),
      "hns": grouped["hns"].mean(),
      "hns_std": grouped["hns"].std(ddof=1),
  }).reset_index()
  table["score"] = [f"{m:.1f} ± {s:.1f}" if np.isfinite(s) else f"{m:.1f}" for m, s in zip(table["mean"], table["std"])]
  return table


def _ours_frame(ours: Any, name: str) -> pd.DataFrame:
  """Our per-game mean scores as a game-indexed DataFrame with one column per algorithm."""
  if isinstance(ours, pd.DataFrame):
    df = ours.copy()
    if "game" in df.columns:
      if "mean" in df.columns:  # a per_game_table.
        if "algorithm" in df.columns:
          df = df.pivot(index="game", columns="algorithm", values="mean")
          df.columns = [str(c) for c in df.columns]
        else:
          df = df.set_index("game")[["mean"]].rename(columns={"mean": name})
      else:
        df = df.set_index("game")
    elif "mean" in df.columns:
      df = df[["mean"]].rename(columns={"mean": name})
  elif isinstance(ours, pd.Series):
    df = ours.to_frame(name)
  elif isinstance(ours, Mapping):
    df = pd.Series(dict(ours), dtype=float).to_frame(name)
  else:
    raise ConfigError(f"ours must be a Series/dict game -> mean score or a per_game_table, got {type(ours).__name__}")
  df = df.apply(pd.to_numeric, errors="coerce")
  df.index = [canonical_game(g) for g in df.index]
  df.index.name = "game"
  return df


def _hns_aggregates(hns: pd.Series) -> Dict[str, float]:
  values = hns.dropna().to_numpy(float)
  if values.size == 0:
    return {"Mean HNS": math.nan, "Median HNS": math.nan, "IQM HNS": math.nan}
  matrix = values[None, :]  # one "run" (the per-game mean) per game.
  return {"Mean HNS": float(rly_metrics.aggregate_mean(matrix)),
          "Median HNS": float(rly_metrics.aggregate_median(matrix)),
          "IQM HNS": float(rly_metrics.aggregate_iqm(matrix))}


def published_comparison(ours: Any, columns: Sequence[str] = DEFAULT_COMPARISON, name: str = "ours",
                         aggregates: bool = True) -> pd.DataFrame:
  """Our per-game mean scores next to published Atari 100k scores on the same games.

  Args:
    ours: game -> mean score, as a Series / dict, or a `per_game_table` (one column per algorithm).
    columns: published columns of the reference table (see PUBLISHED_COLUMNS).
    name: column name for `ours` when it is a Series / dict.
    aggregates: append rows "Mean HNS", "Median HNS", "IQM HNS" computed over exactly the games in
      `ours` (for ours and each published column alike), so the comparison is like for like.

  Returns:
    DataFrame indexed by game: random, human, our column(s), the published columns (raw scores), then
    `hns_<column>` for each. Aggregate rows hold values only in the hns_ columns. These aggregates are
    over per-game *means* (published tables give no per-run scores), so they are not the run-level rliable
    IQM of `aggregate_scores` nor the IQMs quoted in papers; compare them with each other only.
  """
  unknown = [c for c in columns if c not in PUBLISHED_COLUMNS]
  if unknown:
    raise ConfigError(f"unknown published column(s) {unknown}; use any of {list(PUBLISHED_COLUMNS)}")
  mine = _ours_frame(ours, name)
  clash = [c for c in mine.columns if c in columns or c in ("random", "human")]
  if clash:
    raise ConfigError(f"our column name(s) {clash} clash with reference columns; pass another name=")
  reference = load_atari_reference().loc[list(mine.index)]
  table = pd.concat([reference[["random", "human"]], mine, reference[list(columns)]], axis=1)
  table.index.name = "game"
  scored = list(mine.columns) + list(columns)
  for column in scored:
    table[f"hns_{column}"] = (table[column] - table["random"]) / (table["human"] - table["random"])
  if aggregates:
    rows = {column: _hns_aggregates(table[f"hns_{column}"]) for column in scored}
    extra = pd.DataFrame({f"hns_{c}": rows[c] for c in scored})
    table = pd.concat([table, extra.reindex(columns=table.columns)], axis=0)
    table.index.name = "game"
  return table
