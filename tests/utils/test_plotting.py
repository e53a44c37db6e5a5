"""Every plotting function writes a PNG, including the "no data yet" cases, and draws the numbers it is given."""

import os

import numpy as np
import pandas as pd
import pytest

from repertory.utils import plotting, scores
from repertory.utils.loggers import MetricsWriter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, expected):
  assert path == os.fspath(expected)
  with open(path, "rb") as f:
    data = f.read()
  assert data[:8] == PNG_MAGIC
  assert len(data) > 2000
  return len(data)


@pytest.fixture
def drawn(monkeypatch):
  """The figures the plotting functions save, kept open for inspection (closed at the end)."""
  figures = []

  def keep(fig, out_png):
    figures.append(fig)
    fig.canvas.draw()
    fig.savefig(out_png, dpi=40)
    return os.fspath(out_png)

  monkeypatch.setattr(plotting, "_save", keep)
  yield figures
  import matplotlib.pyplot as plt
  for fig in figures:
    plt.close(fig)


def _open_figures():
  import matplotlib.pyplot as plt
  return len(plt.get_fignums())


def test_import_does_not_select_a_backend():
  import subprocess
  import sys
  code = "import sys; import repertory.utils.plotting, repertory.utils.scores; print('matplotlib.pyplot' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


def test_plot_learning_curve_from_metrics_writer(tmp_path):
  writer = MetricsWriter(str(tmp_path / "run"), tensorboard=False)
  rng = np.random.default_rng(0)
  for i in range(60):
    writer.write("actor", {"actor_steps": 100 * i, "episode_return": float(rng.normal(i / 10)), "episode_length": 20})
    writer.write("learner", {"learner_steps": i, "loss": 0.5})  # blank actor_steps / episode_return.
    if i % 20 == 19:
      writer.write("evaluator", {"actor_steps": 100 * i, "episode_return": i / 10, "episodes_evaluated": 10})
  writer.close()
  before = _open_figures()
  out = plotting.plot_learning_curve(writer.path, tmp_path / "curve.png", title="pong")
  full = _assert_png(out, tmp_path / "curve.png")
  assert _open_figures() == before
  empty = plotting.plot_learning_curve(tmp_path / "missing.csv", tmp_path / "empty.png")
  assert full > _assert_png(empty, tmp_path / "empty.png")


def test_learning_curve_draws_the_evaluations_at_their_steps(tmp_path, drawn):
  writer = MetricsWriter(str(tmp_path / "run"), tensorboard=False)
  for i in range(60):
    writer.write("actor", {"actor_steps": 100 * i, "episode_return": float(i), "episode_length": 20})
    if i % 20 == 19:
      writer.write("evaluator", {"actor_steps": 100 * i, "episode_return": i / 10, "episodes_evaluated": 10})
  writer.close()
  plotting.plot_learning_curve(writer.path, tmp_path / "curve.png")
  lines = [line for ax in drawn[0].axes for line in ax.lines]
  evaluation = [line for line in lines if list(line.get_xdata()) == [1900, 3900, 5900]]
  assert len(evaluation) == 1
  np.testing.assert_allclose(evaluation[0].get_ydata(), [1.9, 3.9, 5.9])
  assert any(len(line.get_xdata()) >= 50 and line.get_ydata()[-1] > 50 for line in lines)  # training episodes


def test_plot_learning_curve_no_data_cases(tmp_path):
  header_only = tmp_path / "header.csv"
  header_only.write_text("source,time,actor_steps,learner_steps,episodes\n")
  learner_only = tmp_path / "learner.csv"
  learner_only.write_text("source,time,actor_steps,learner_steps,episodes,loss\nlearner,1.0,,5,,0.3\n")
  blank_file = tmp_path / "blank.csv"
  blank_file.write_text("")
  for name, csv_path in (("missing", tmp_path / "nope.csv"), ("header", header_only), ("learner", learner_only),
                         ("blank", blank_file)):
    out = plotting.plot_learning_curve(csv_path, tmp_path / "plots" / f"{name}.png")
    _assert_png(out, tmp_path / "plots" / f"{name}.png")
  # A custom y that exists only for the evaluator still plots.
  evaluator = tmp_path / "eval.csv"
  evaluator.write_text("source,actor_steps,episode_return\nactor,10,\nevaluator,10,3.0\nevaluator,20,4.5\n")
  _assert_png(plotting.plot_learning_curve(evaluator, tmp_path / "eval.png"), tmp_path / "eval.png")


def _curves():
  rows = []
  for variant, slope in (("lru", 1.0), ("gtrxl", 0.5)):
    for seed in range(3):
      steps = np.arange(0, 1000, 50) + seed  # seeds logged at slightly different steps.
      rows += [{"variant": variant, "seed": seed, "step": s, "return": slope * s / 100 + seed} for s in steps]
  return pd.DataFrame(rows)


def test_curves_are_the_mean_over_seeds_inside_their_interval(tmp_path, drawn):
  plotting.plot_curves_with_ci(_curves(), tmp_path / "ci.png", "t")
  ax = drawn[0].axes[0]
  lines = {line.get_label(): line for line in ax.lines}
  assert set(lines) == {"lru (n=3)", "gtrxl (n=3)"}
  for label, slope in (("lru (n=3)", 1.0), ("gtrxl (n=3)", 0.5)):
    x, y = np.asarray(lines[label].get_xdata(), float), np.asarray(lines[label].get_ydata(), float)
    shared = (x >= 2) & (x <= 950)  # steps every seed's range covers: mean of seed + slope·x/100 over seeds 0, 1, 2
    np.testing.assert_allclose(y[shared], slope * x[shared] / 100 + 1.0, atol=1e-9)
  for band, line in zip(ax.collections, ax.lines):
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    assert low <= np.nanmin(line.get_ydata()) + 1e-9 and np.nanmax(line.get_ydata()) <= high + 1e-9


def test_per_game_bars_are_the_human_normalised_scores(tmp_path, drawn):
  table = scores.published_comparison({"Pong": -5.0, "Breakout": 12.0, "Alien": 850.0})
  plotting.plot_per_game_vs_published(table, tmp_path / "hns.png")
  ax = drawn[0].axes[0]
  bars = {container.get_label(): [patch.get_height() for patch in container.patches] for container in ax.containers}
  games = [label.get_text() for label in ax.get_xticklabels()]
  np.testing.assert_allclose(bars["ours"], table.loc[games, "hns_ours"].to_numpy(float))
  np.testing.assert_allclose(bars["DER"], table.loc[games, "hns_der"].to_numpy(float))


def test_aggregate_intervals_span_each_confidence_interval(tmp_path, drawn):
  rng = np.random.default_rng(0)
  aggregate = scores.aggregate_scores({"ours": rng.normal(0.3, 0.1, (3, 5)), "der": rng.normal(0.2, 0.1, (3, 5))},
                                      reps=100)
  plotting.plot_aggregate_intervals(aggregate, tmp_path / "agg.png")
  mean_axis = drawn[0].axes[0]
  assert [label.get_text() for label in mean_axis.get_yticklabels()] == ["ours", "der"]
  spans = [(patch.get_x(), patch.get_x() + patch.get_width()) for patch in mean_axis.patches]
  expected = aggregate[aggregate["metric"] == "mean"].set_index("algorithm").loc[["ours", "der"]]
  np.testing.assert_allclose(spans, expected[["ci_low", "ci_high"]].to_numpy(float))


def test_plot_curves_with_ci(tmp_path):
  out = plotting.plot_curves_with_ci(_curves(), tmp_path / "ci.png", "memory length 64")
  _assert_png(out, tmp_path / "ci.png")
  single = _curves()[lambda d: d["seed"] == 0]
  _assert_png(plotting.plot_curves_with_ci(single, tmp_path / "one.png", None), tmp_path / "one.png")
  empty = pd.DataFrame(columns=["variant", "seed", "step", "return"])
  _assert_png(plotting.plot_curves_with_ci(empty, tmp_path / "none.png", "t"), tmp_path / "none.png")


def test_plot_per_game_vs_published(tmp_path):
  ours = {"Pong": -5.0, "Breakout": 12.0, "Alien": 850.0, "Qbert": 1500.0}
  table = scores.published_comparison(ours)
  _assert_png(plotting.plot_per_game_vs_published(table, tmp_path / "hns.png"), tmp_path / "hns.png")
  _assert_png(plotting.plot_per_game_vs_published(table, tmp_path / "raw.png", normalized=False),
              tmp_path / "raw.png")
  _assert_png(plotting.plot_per_game_vs_published(pd.DataFrame(), tmp_path / "none.png"), tmp_path / "none.png")


def test_plot_aggregate_intervals(tmp_path):
  rng = np.random.default_rng(0)
  aggregate = scores.aggregate_scores({"ours": rng.normal(0.3, 0.1, (3, 5)), "der": rng.normal(0.2, 0.1, (3, 5))},
                                      reps=100)
  _assert_png(plotting.plot_aggregate_intervals(aggregate, tmp_path / "agg.png", title="Atari 100k"),
              tmp_path / "agg.png")
  _assert_png(plotting.plot_aggregate_intervals(pd.DataFrame(), tmp_path / "none.png"), tmp_path / "none.png")


@pytest.mark.parametrize("bad", ["plot_curves_with_ci"])
def test_wrong_columns_is_config_error(tmp_path, bad):
  from repertory.errors import ConfigError
  with pytest.raises(ConfigError, match="needs columns"):
    getattr(plotting, bad)(pd.DataFrame({"x": [1]}), tmp_path / "x.png", "t")


def test_plot_diagnostics_draws_each_family_of_columns_against_learner_updates(tmp_path, drawn):
  from repertory.utils.diagnostics_plot import plot_diagnostics
  writer = MetricsWriter(str(tmp_path), tensorboard=False)
  writer.write("learner", {"learner_steps": 10, "loss": 1.0})
  assert plot_diagnostics(writer.path, tmp_path / "none.png") is None  # no diagnostics rows: no plot
  assert not (tmp_path / "none.png").exists()
  for steps, rank in ((100, 40.0), (200, 31.0)):
    writer.write("diagnostics", {"learner_steps": steps, "srank": rank, "probe_loss": rank / 100,
                                 "dormant/torso/conv_1": rank / 1000, "dormant/head/linear_0": 0.5,
                                 "weight_norm/head": rank * 2, "linear_probe_r2/head": rank - 65})
  out = plot_diagnostics(writer.path, tmp_path / "diagnostics.png", title="run")
  assert out == os.fspath(tmp_path / "diagnostics.png")
  titles = {ax.get_title(): ax for ax in drawn[0].axes if ax.get_title()}
  assert set(titles) == {"effective rank srank", "dormant fraction", "plasticity probe loss", "weight norm",
                         "linear probe R² (below −1 drawn at −1)"}
  (r2,) = titles["linear probe R² (below −1 drawn at −1)"].get_lines()
  np.testing.assert_allclose(r2.get_ydata(), [-1.0, -1.0])  # −25 and −34 clipped
  (rank_line,) = titles["effective rank srank"].get_lines()
  np.testing.assert_allclose(rank_line.get_xdata(), [100, 200])
  np.testing.assert_allclose(rank_line.get_ydata(), [40.0, 31.0])
  dormant = {line.get_label(): line.get_ydata() for line in titles["dormant fraction"].get_lines()}
  np.testing.assert_allclose(dormant["torso/conv_1"], [0.04, 0.031])
  np.testing.assert_allclose(dormant["head/linear_0"], [0.5, 0.5])
  assert titles["weight norm"].get_yscale() == "log"
