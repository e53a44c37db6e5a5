"""Score tables and aggregate metrics for reporting results.

Atari 100k: human-normalised score HNS = (score - random) / (human - random) with the random / human
table shipped in `repertory/data/atari100k_reference.csv` (Atari 100k protocol, Kaiser et al. 2020, arXiv 1903.00374), and
aggregates following Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice"
(arXiv 2108.13264): mean, median and interquartile mean (IQM, 25% trimmed mean over all runs x games)
with 95% percentile stratified-bootstrap confidence intervals, computed with `rliable`.

Non-Atari benchmarks (memory tasks, control): `final_score_table` reports the mean return of the last
fraction of each run with a bootstrap CI over seeds.
"""

import functools
import importlib.resources
import math
import re
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from rliable import metrics as rly_metrics

from repertory.errors import ConfigError

REFERENCE_FILE = "atari100k_reference.csv"
# Published Atari 100k columns of the reference table, in the order they are usually reported.
PUBLISHED_COLUMNS = ("der", "der_rerun_agarwal2021", "drq_eps", "spr", "spr_rerun_agarwal2021", "alix", "bbf",
                     "efficientzero")
DEFAULT_COMPARISON = ("der", "drq_eps", "spr", "alix")
DISPLAY_NAMES = {
    "der": "DER", "der_rerun_agarwal2021": "DER (Agarwal rerun)", "drq_eps": "DrQ(ε)", "spr": "SPR",
    "spr_rerun_agarwal2021": "SPR (Agarwal rerun)", "alix": "A-LIX", "bbf": "BBF", "efficientzero": "EfficientZero",
}

# rliable aggregate functions over a [runs, games] matrix (arXiv 2108.13264, Sec. 4).
AGGREGATE_METRICS: Dict[str, Callable[[np.ndarray], float]] = {
    "mean": rly_metrics.aggregate_mean,
    "median": rly_metrics.aggregate_median,
    "iqm": rly_metrics.aggregate_iqm,
    "optimality_gap": rly_metrics.aggregate_optimality_gap,
}

ScoreMatrix = Mapping[str, np.ndarray]


# ----------------------------------------------------------------------------------------------------------
# Reference table and human-normalised scores.


@functools.lru_cache(maxsize=1)
def _reference() -> pd.DataFrame:
  resource = importlib.resources.files("repertory.data").joinpath(REFERENCE_FILE)
  with resource.open("r", encoding="utf-8") as f:
    table = pd.read_csv(f)
  return table.set_index("game")


def load_atari_reference() -> pd.DataFrame:
  """The Atari 100k reference table (random, human and published scores), indexed by game."""
  return _reference().copy()


def atari_games() -> List[str]:
  """The 26 Atari 100k games of the reference table."""
  return list(_reference().index)


def _key(name: str) -> str:
  return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.lru_cache(maxsize=1)
def _game_keys() -> Dict[str, str]:
  return {_key(game): game for game in _reference().index}


def canonical_game(game: str) -> str:
  """Maps `Pong`, `pong`, `ALE/Pong-v5`, `PongNoFrameskip-v4` or `ms_pacman` to the reference name."""
  name = str(game).strip()
  name = re.sub(r"^ALE/", "", name)
  name = re.sub(r"(NoFrameskip|Deterministic)?-v\d+$", "", name)
  found = _game_keys().get(_key(name))
  if found is None:
    raise ConfigError(f"unknown Atari 100k game {game!r}; use one of: {', '.join(atari_games())}")
  return found


def human_normalized(game: str, score: float) -> float:
  """HNS = (score - random) / (human - random) (Atari 100k protocol, Kaiser et al. 2020, arXiv 1903.00374)."""
  row = _reference().loc[canonical_game(game)]
  return (float(score) - row["random"]) / (row["human"] - row["random"])


def human_normalized_scores(games: Union[str, Sequence[str]], scores: Any) -> np.ndarray:
  """Vectorised HNS.

  `games` is one game name or a sequence of names; `scores` broadcasts against it along its last axis,
  so a [runs, games] matrix with `games` naming its columns, or a 1-D array paired with one name per
  element, both work.
  """
  names = [games] if isinstance(games, str) else list(games)
  reference = _reference().loc[[canonical_game(g) for g in names]]
  random, human = reference["random"].to_numpy(float), reference["human"].to_numpy(float)
  if isinstance(games, str):
    random, human = random[0], human[0]
  return (np.asarray(scores, dtype=float) - random) / (human - random)


# ----------------------------------------------------------------------------------------------------------
# Aggregates with stratified-bootstrap confidence intervals.


@functools.lru_cache(maxsize=1)
def _rliable_library() -> Optional[Any]:
  try:
    from rliable import library
  except (ImportError, TypeError, AttributeError):  # arch 7.x fails to import with pandas >= 3.
    return None
  return library


def _interval_estimates(score_dict: Mapping[str, np.ndarray], func: Callable[[np.ndarray], np.ndarray], reps: int,
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
  points, intervals = _interval_estimates(arrays, func, reps=reps, seed=seed, confidence=confidence)
  rows = []
  for name in arrays:
    for i, metric in enumerate(metrics):
      rows.append({"algorithm": name, "metric": metric, "value": float(points[name][i]),
                   "ci_low": float(intervals[name][0, i]), "ci_high": float(intervals[name][1, i])})
  return pd.DataFrame(rows, columns=["algorithm", "metric", "value", "ci_low", "ci_high"])


def _require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
  missing = [c for c in columns if c not in df.columns]
  if missing:
    raise ConfigError(f"{what} needs columns {list(columns)}; missing {missing} (has {list(df.columns)})")


def score_matrix_from_results(results: pd.DataFrame, normalize: bool = True) -> Dict[str, np.ndarray]:
  """Long results (game, seed, score [, algorithm]) -> {algorithm: [runs, games]} for `aggregate_scores`.

  Runs are the seeds of each game in sorted order (the i-th seed of each game is run i); every game must
  have the same number of seeds. With `normalize`, scores are human-normalised.
  """
  _require_columns(results, ("game", "seed", "score"), "score_matrix_from_results")
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
  _require_columns(results, ("game", "seed", "score"), "per_game_table")
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
  reference = _reference().loc[list(mine.index)]
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


# ----------------------------------------------------------------------------------------------------------
# Non-Atari benchmarks.


def final_scores(curves: pd.DataFrame, last_fraction: float = 0.1, value: str = "return") -> pd.DataFrame:
  """Per (variant, seed): mean of `value` over the rows with step >= (1 - last_fraction) * last step.

  The last row of each run always counts. Returns columns variant, seed, final, last_step.
  """
  if not 0 < last_fraction <= 1:
    raise ConfigError(f"last_fraction must be in (0, 1], got {last_fraction}")
  _require_columns(curves, ("variant", "seed", "step", value), "final_score_table")
  df = curves[["variant", "seed", "step", value]].copy()
  df["step"] = pd.to_numeric(df["step"], errors="coerce")
  df[value] = pd.to_numeric(df[value], errors="coerce")
  df = df.dropna()
  if df.empty:
    raise ConfigError(f"final_score_table got no rows with numeric step and {value}")
  rows = []
  for (variant, seed), run in df.groupby(["variant", "seed"], sort=True):
    last = run["step"].max()
    tail = run[run["step"] >= (1 - last_fraction) * last]
    rows.append({"variant": variant, "seed": seed, "final": float(tail[value].mean()), "last_step": float(last)})
  return pd.DataFrame(rows)


def final_score_table(curves: pd.DataFrame, last_fraction: float = 0.1, reps: int = 2000, seed: int = 0,
                      confidence: float = 0.95, value: str = "return") -> pd.DataFrame:
  """Final performance per variant for memory / control benchmarks.

  Each run's final score is the mean of `value` over its last `last_fraction` of steps (step >=
  (1 - last_fraction) * its last step); per variant we report the mean over seeds with a 95% percentile
  bootstrap CI over seeds (rliable's stratified bootstrap with one task).

  Returns columns variant, seeds, mean, std (ddof=1), ci_low, ci_high, last_step (smallest over seeds).
  """
  finals = final_scores(curves, last_fraction=last_fraction, value=value)
  score_dict = {variant: group["final"].to_numpy(float)[:, None] for variant, group in finals.groupby("variant", sort=True)}
  func = lambda x: np.array([np.mean(x)])  # noqa: E731
  points, intervals = _interval_estimates(score_dict, func, reps=reps, seed=seed, confidence=confidence)
  rows = []
  for variant, group in finals.groupby("variant", sort=True):
    rows.append({"variant": variant, "seeds": len(group), "mean": float(points[variant][0]),
                 "std": float(group["final"].std(ddof=1)) if len(group) > 1 else math.nan,
                 "ci_low": float(intervals[variant][0, 0]), "ci_high": float(intervals[variant][1, 0]),
                 "last_step": float(group["last_step"].min())})
  return pd.DataFrame(rows, columns=["variant", "seeds", "mean", "std", "ci_low", "ci_high", "last_step"])
