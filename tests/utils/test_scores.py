"""Score tables and aggregates: hand computations against the reference table and rliable."""

import csv
import importlib.resources
import sys

import numpy as np
import pandas as pd
import pytest

from repertory.errors import ConfigError
from repertory.utils import final_scores, scores


def _csv_rows():
  resource = importlib.resources.files("repertory.data").joinpath("atari100k_reference.csv")
  with resource.open("r", encoding="utf-8") as f:
    return {row["game"]: row for row in csv.DictReader(f)}


def test_reference_table_ships_with_package():
  table = scores.load_atari_reference()
  assert len(table) == 26 and table.index.name == "game"
  assert list(table.columns) == ["random", "human", *scores.PUBLISHED_COLUMNS]
  assert table.loc["Pong", "random"] == -20.7 and table.loc["Pong", "human"] == 14.6
  table.loc["Pong", "human"] = 0.0  # a copy: the cached table is unchanged.
  assert scores.load_atari_reference().loc["Pong", "human"] == 14.6


def test_human_normalized_hand_computation():
  assert scores.human_normalized("Pong", -20.7) == pytest.approx(0.0)
  assert scores.human_normalized("Pong", 14.6) == pytest.approx(1.0)
  assert scores.human_normalized("Pong", -3.05) == pytest.approx(0.5)
  # Breakout: random 1.7, human 30.5.
  assert scores.human_normalized("Breakout", 16.1) == pytest.approx((16.1 - 1.7) / 28.8)
  for alias in ("pong", "ALE/Pong-v5", "PongNoFrameskip-v4"):
    assert scores.human_normalized(alias, 14.6) == pytest.approx(1.0)
  assert scores.human_normalized("ms_pacman", 307.3) == pytest.approx(0.0)


def test_human_normalized_vectorised():
  got = scores.human_normalized_scores(["Pong", "Breakout"], np.array([[-20.7, 1.7], [14.6, 30.5]]))
  np.testing.assert_allclose(got, [[0.0, 0.0], [1.0, 1.0]], atol=1e-12)
  np.testing.assert_allclose(scores.human_normalized_scores("Pong", [-20.7, 14.6]), [0.0, 1.0], atol=1e-12)
  np.testing.assert_allclose(scores.human_normalized_scores(["Pong", "Pong"], [-20.7, 14.6]), [0.0, 1.0], atol=1e-12)


def test_unknown_game_is_config_error_listing_games():
  with pytest.raises(ConfigError, match="unknown Atari 100k game 'Doom'.*Alien.*UpNDown") as info:
    scores.human_normalized("Doom", 1.0)
  assert "\n" not in str(info.value)
  with pytest.raises(ConfigError):
    scores.human_normalized_scores(["Pong", "Doom"], [0.0, 0.0])


MATRIX = np.array([[0.0, 1.0, 2.0, 10.0], [3.0, 4.0, 5.0, 100.0]])  # [runs, games]


def test_aggregate_scores_hand_computation_and_cis():
  table = scores.aggregate_scores({"a": MATRIX, "b": MATRIX + 1.0}, reps=300, seed=0)
  assert list(table.columns) == ["algorithm", "metric", "value", "ci_low", "ci_high"]
  assert list(table["metric"]) == ["mean", "median", "iqm"] * 2
  a = table[table["algorithm"] == "a"].set_index("metric")["value"]
  assert a["mean"] == pytest.approx(125.0 / 8)
  assert a["median"] == pytest.approx(3.0)  # median of per-game means [1.5, 2.5, 3.5, 55].
  assert a["iqm"] == pytest.approx(np.mean([2.0, 3.0, 4.0, 5.0]))  # middle half of the 8 sorted scores.
  b = table[table["algorithm"] == "b"].set_index("metric")["value"]
  assert b["iqm"] == pytest.approx(4.5)
  assert np.all(table["ci_low"] <= table["value"]) and np.all(table["value"] <= table["ci_high"])
  assert np.all(table["ci_low"] < table["ci_high"])
  again = scores.aggregate_scores({"a": MATRIX, "b": MATRIX + 1.0}, reps=300, seed=0)
  pd.testing.assert_frame_equal(table, again)  # seeded.


def test_fallback_bootstrap_matches_rliable_semantics(monkeypatch):
  """The numpy stratified bootstrap (used when rliable.library cannot import) gives sane CIs."""
  monkeypatch.setattr(scores, "_rliable_library", lambda: None)
  rng = np.random.default_rng(0)
  matrix = rng.normal(size=(10, 6))
  table = scores.aggregate_scores({"x": matrix}, reps=400, seed=1).set_index("metric")
  assert table.loc["iqm", "value"] == pytest.approx(scores.AGGREGATE_METRICS["iqm"](matrix))
  assert np.all(table["ci_low"] <= table["value"]) and np.all(table["value"] <= table["ci_high"])
  # Mean of 60 N(0,1) scores: the CI half-width is about 1.96 / sqrt(60) = 0.25.
  width = table.loc["mean", "ci_high"] - table.loc["mean", "ci_low"]
  assert 0.3 < width < 0.7
  one_run = scores.aggregate_scores({"x": matrix[:1]}, reps=50, seed=1)  # nothing to resample.
  np.testing.assert_allclose(one_run["ci_low"], one_run["value"])
  np.testing.assert_allclose(one_run["ci_high"], one_run["value"])


def test_rliable_and_fallback_agree_when_rliable_imports(monkeypatch):
  if scores._rliable_library() is None:
    pytest.skip("rliable.library does not import here (arch incompatible with the installed pandas)")
  matrix = np.random.default_rng(0).normal(size=(8, 5))
  real = scores.aggregate_scores({"x": matrix}, reps=2000, seed=0)
  monkeypatch.setattr(scores, "_rliable_library", lambda: None)
  ours = scores.aggregate_scores({"x": matrix}, reps=2000, seed=0)
  np.testing.assert_allclose(real["value"], ours["value"])
  np.testing.assert_allclose(real[["ci_low", "ci_high"]], ours[["ci_low", "ci_high"]], atol=0.1)


def test_aggregate_scores_rejects_bad_input():
  with pytest.raises(ConfigError, match="unknown aggregate metric"):
    scores.aggregate_scores({"a": MATRIX}, metrics=("mode",))
  with pytest.raises(ConfigError, match=r"\[runs, games\]"):
    scores.aggregate_scores({"a": np.ones(4)})


def _results():
  rows = []
  for game, values in {"Pong": [-20.7, 14.6, -3.05], "Breakout": [1.7, 30.5, 16.1]}.items():
    rows += [{"game": game, "seed": seed, "score": v} for seed, v in enumerate(values)]
  return pd.DataFrame(rows)


def test_per_game_table_hand_computation():
  table = scores.per_game_table(_results()).set_index("game")
  assert list(table.index) == ["Breakout", "Pong"]
  assert table.loc["Pong", "seeds"] == 3
  assert table.loc["Pong", "mean"] == pytest.approx(np.mean([-20.7, 14.6, -3.05]))
  assert table.loc["Pong", "std"] == pytest.approx(np.std([-20.7, 14.6, -3.05], ddof=1))
  assert table.loc["Pong", "hns"] == pytest.approx(0.5)
  assert table.loc["Breakout", "hns"] == pytest.approx(np.mean([0.0, 1.0, 0.5]))
  std = np.std([-20.7, 14.6, -3.05], ddof=1)  # 17.65...
  assert table.loc["Pong", "score"] == f"-3.0 ± {std:.1f}"
  with_algorithm = scores.per_game_table(_results().assign(algorithm="der"))
  assert list(with_algorithm.columns[:2]) == ["algorithm", "game"]


def test_score_matrix_from_results():
  matrix = scores.score_matrix_from_results(_results())
  assert list(matrix) == ["ours"]
  np.testing.assert_allclose(matrix["ours"], [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]], atol=1e-12)  # Breakout, Pong.
  with pytest.raises(ConfigError, match="different numbers of seeds"):
    scores.score_matrix_from_results(_results().iloc[:-1])


def test_published_comparison_matches_csv():
  rows = _csv_rows()
  ours = {"Pong": 0.0, "Breakout": 10.0, "Alien": 900.0}
  table = scores.published_comparison(ours)
  assert list(table.columns) == ["random", "human", "ours", "der", "drq_eps", "spr", "alix",
                                 "hns_ours", "hns_der", "hns_drq_eps", "hns_spr", "hns_alix"]
  games = ["Pong", "Breakout", "Alien"]
  assert list(table.index) == games + ["Mean HNS", "Median HNS", "IQM HNS"]
  for game in games:
    for column in ("random", "human", "der", "drq_eps", "spr", "alix"):
      assert table.loc[game, column] == pytest.approx(float(rows[game][column]))
    assert table.loc[game, "ours"] == ours[game]
    random, human = float(rows[game]["random"]), float(rows[game]["human"])
    assert table.loc[game, "hns_spr"] == pytest.approx((float(rows[game]["spr"]) - random) / (human - random))
  # Aggregates are over the same three games only (like for like).
  der_hns = [(float(rows[g]["der"]) - float(rows[g]["random"])) / (float(rows[g]["human"]) - float(rows[g]["random"]))
             for g in games]
  assert table.loc["Mean HNS", "hns_der"] == pytest.approx(np.mean(der_hns))
  assert table.loc["Median HNS", "hns_der"] == pytest.approx(np.median(der_hns))
  assert np.isnan(table.loc["Mean HNS", "der"])
  plain = scores.published_comparison(pd.Series(ours), columns=("bbf",), aggregates=False)
  assert list(plain.index) == games and list(plain.columns) == ["random", "human", "ours", "bbf", "hns_ours", "hns_bbf"]


def test_published_comparison_from_per_game_table():
  table = scores.published_comparison(scores.per_game_table(_results().assign(algorithm="mine")))
  assert "mine" in table.columns and table.loc["Pong", "hns_mine"] == pytest.approx(0.5)
  with pytest.raises(ConfigError, match="unknown published column"):
    scores.published_comparison({"Pong": 0.0}, columns=("muzero",))


def test_to_markdown_with_and_without_tabulate(monkeypatch):
  table = scores.published_comparison({"Pong": -3.05}, columns=("der",))
  text = scores.to_markdown(table)
  lines = text.splitlines()
  assert lines[0].startswith("|") and "hns_ours" in lines[0] and len(lines) == 2 + 4
  assert "nan" not in text
  monkeypatch.setitem(sys.modules, "tabulate", None)  # import tabulate -> ImportError.
  plain = scores.to_markdown(table).splitlines()
  assert plain[0] == "| game | random | human | ours | der | hns_ours | hns_der |"
  assert plain[2].startswith("| Pong | -20.7 | 14.6 | -3.05 | -19.3 |") and "nan" not in "".join(plain)


def test_final_score_table_hand_computation():
  rows = []
  for variant, offset in (("lru", 0.0), ("gtrxl", 100.0)):
    for seed in range(3):
      for step in range(0, 100, 10):  # steps 0..90; last 20% -> steps >= 72 -> 80, 90.
        rows.append({"variant": variant, "seed": seed, "step": step, "return": offset + step + seed})
  table = final_scores.final_score_table(pd.DataFrame(rows), last_fraction=0.2, reps=300).set_index("variant")
  finals = [85.0 + s for s in range(3)]
  assert table.loc["lru", "seeds"] == 3
  assert table.loc["lru", "mean"] == pytest.approx(np.mean(finals))
  assert table.loc["lru", "std"] == pytest.approx(np.std(finals, ddof=1))
  assert table.loc["gtrxl", "mean"] == pytest.approx(100 + np.mean(finals))
  assert table.loc["lru", "last_step"] == 90
  for variant in ("lru", "gtrxl"):
    row = table.loc[variant]
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    assert row["ci_low"] >= min(finals) + (100 if variant == "gtrxl" else 0) - 1e-9
  one = final_scores.final_score_table(pd.DataFrame(rows[:10]), last_fraction=0.1, reps=50)
  assert one.loc[0, "mean"] == 90.0 and one.loc[0, "ci_low"] == one.loc[0, "ci_high"] == 90.0
  with pytest.raises(ConfigError, match="last_fraction"):
    final_scores.final_score_table(pd.DataFrame(rows), last_fraction=0.0)
  with pytest.raises(ConfigError, match="missing"):
    final_scores.final_score_table(pd.DataFrame(rows).drop(columns="seed"))
