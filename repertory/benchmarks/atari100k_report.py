"""Reports of `repertory bench atari100k` over its finished runs: runs.csv, per_game.csv, aggregate.csv,
comparison.md, per_game_vs_published.png, aggregate_intervals.png and RESULTS.md."""

import json
import os
from typing import Any, Dict, List, Sequence, Tuple

from repertory.utils.timing import RUN_PHASES

REPORT_FILES = ("RESULTS.md", "runs.csv", "per_game.csv", "aggregate.csv", "comparison.md", "per_game_vs_published.png",
                "aggregate_intervals.png")
# A sync run's wall-clock seconds per phase of its loop (`utils.timing.RUN_PHASES`; runs recorded before have none).
PHASES = tuple(f"{phase}_s" for phase in RUN_PHASES)


def _run_rows(specs: Sequence[Any]) -> List[Dict[str, Any]]:
  rows = []
  for spec in specs:
    with open(os.path.join(spec.run_dir, "status.json")) as f:
      status = json.load(f)
    rows.append({"game": spec.labels["game"], "seed": spec.labels["seed"], "score": status["score"], "eval_episodes": status["eval_episodes"],
                 "eval_return_std": status["eval_return_std"], "actor_steps": int(status["actor_steps"]),
                 "learner_steps": int(status["learner_steps"]), "wall_clock_s": status["wall_clock_s"],
                 "learner_updates_per_s": status["learner_updates_per_s"],
                 "training_steps_per_s": status["training_steps_per_s"],
                 **{phase: round(float(status.get(phase, "nan")), 1) for phase in PHASES},
                 "peak_rss_mb": status.get("peak_rss_mb", float("nan")),
                 "commit": status.get("commit", "unknown"),
                 "run_dir": os.path.relpath(spec.run_dir, os.path.dirname(os.path.dirname(spec.run_dir)))})
  return rows


def equal_seed_runs(runs):
  """The runs of the lowest seeds, as many for every game as the game with fewest finished runs has
  (rliable's stratified bootstrap needs a full games × runs matrix)."""
  seeds_per_game = int(runs.groupby("game").size().min())
  return runs.sort_values(["game", "seed"]).groupby("game").head(seeds_per_game)


def write_reports(out: str, record: Dict[str, Any], specs: Sequence[Any], missing: Tuple[Any, ...] = ()) -> Dict[str, str]:
  """Reports over the finished runs `specs` (`base.Run`s labelled with game and seed); `missing` lists the
  requested runs that have not finished."""
  import pandas as pd
  from repertory.utils import plotting, scores
  from repertory.utils.provenance import provenance
  machine = provenance()  # before any report is rewritten, so that the commit is not marked dirty by this call
  runs = pd.DataFrame(_run_rows(specs))
  runs.to_csv(os.path.join(out, "runs.csv"), index=False)
  per_game = scores.per_game_table(runs[["game", "seed", "score"]])
  per_game.to_csv(os.path.join(out, "per_game.csv"), index=False)
  name = f"ours ({record['agent']}+{record['encoder']})"
  aggregated_runs = equal_seed_runs(runs)
  aggregate = scores.aggregate_scores(
      {name: scores.score_matrix_from_results(aggregated_runs[["game", "seed", "score"]])["ours"]})
  aggregate.to_csv(os.path.join(out, "aggregate.csv"), index=False)
  comparison = scores.published_comparison(per_game[["game", "mean"]].set_index("game")["mean"], name="ours")
  episodes = sorted(set(int(e) for e in runs["eval_episodes"]))
  from repertory.benchmarks import atari100k
  reduced = (record["steps"] != atari100k.STEPS or record["eval_episodes"] != atari100k.EVAL_EPISODES
             or record["max_episode_steps"] != atari100k.MAX_EPISODE_STEPS)
  warning = (["**Reduced mode** (steps, evaluation games or episode cap differ from the protocol): "
              "not comparable with published results.", ""] if reduced else [])
  if missing:
    warning += [f"**Partial**: {len(specs)} of {len(specs) + len(missing)} requested runs finished; not yet run: "
                + ", ".join(s.name for s in missing) + ". Rerun the benchmark command to add them.", ""]
  if len(aggregated_runs) < len(runs):
    runs_per_game = len(aggregated_runs) // aggregated_runs["game"].nunique()
    warning += [f"Aggregates use the lowest {runs_per_game} seed(s) of every game, so that each game has as many "
                "runs; the per-game table uses all finished runs.", ""]
  comparison_md = "\n".join([
      f"# Atari 100k: {record['agent']} + {record['encoder']} encoder vs published results", "", *warning,
      f"Ours: mean over {runs['seed'].nunique()} seed(s) of the final evaluation score (ε = 0.001, "
      f"{'/'.join(map(str, episodes))} evaluation game(s) per run, {record['steps']:,} agent steps). Published: "
      "DER (van Hasselt et al. 2019), DrQ(ε) and SPR (rliable data, Agarwal et al. 2021), A-LIX (Cetin et al. 2022), "
      "from the reference table. HNS aggregates below are over per-game means of exactly these games.", "",
      scores.to_markdown(comparison), ""])
  with open(os.path.join(out, "comparison.md"), "w") as f:
    f.write(comparison_md)
  plots = {
      "per_game": plotting.plot_per_game_vs_published(comparison, os.path.join(out, "per_game_vs_published.png"),
                                                      title=f"Atari 100k: {name} vs published (HNS)"),
      "aggregate": plotting.plot_aggregate_intervals(aggregate, os.path.join(out, "aggregate_intervals.png"),
                                                     title=f"Atari 100k aggregates, {name} (95% bootstrap CIs)"),
  }
  run_table = runs.drop(columns=["run_dir"])
  lines = [
      f"# Atari 100k results: {record['agent']} + {record['encoder']} encoder", "", *warning,
      f"- machine: {machine['machine']}; JAX {machine['jax']} on {machine['jax_devices']}",
      f"- commit: `{machine['commit']}` when the reports were written (each run's own commit is in its row)",
      f"- date: {machine['date']} (Python {machine['python']})",
      f"- protocol: {record['steps']:,} agent steps per run, sync launcher, evaluation ε = 0.001 on a separate "
      f"environment (training=False, whole games) over {'/'.join(map(str, episodes))} game(s); episode cap "
      f"{record['max_episode_steps']:,} agent steps", f"- agent overrides: `{json.dumps(record['overrides'])}`",
      f"- runs: {len(runs)}; the commit of each run is in its row", "",
      "## Aggregates (human-normalised, 95% stratified-bootstrap CIs)", "", scores.to_markdown(aggregate, index=False), "",
      "## Per game", "", scores.to_markdown(per_game, index=False), "",
      "## Runs (wall-clock and learner updates/s measured per run)", "", scores.to_markdown(run_table, index=False), "",
      "`policy_s` … `checkpoints_s`: the run's wall-clock seconds choosing actions, stepping its environment (with "
      "the replay insert), learning (sampling, updates, priorities), evaluating and checkpointing, over all its "
      "invocations; a device computation counts where its result is waited for. Runs trained in one process count "
      "their shared policy and learning calls in full each. `wall_clock_s` less their sum is start-up, compilation "
      "and bookkeeping. `peak_rss_mb`: the peak resident memory of the process that trained the run (and the runs "
      "trained with it), replay included.", "",
      "Files: `runs.csv`, `per_game.csv`, `aggregate.csv`, `comparison.md`, `per_game_vs_published.png`, "
      "`aggregate_intervals.png`, and per run `runs/<Game>_seed<k>/metrics.csv`.", ""]
  with open(os.path.join(out, "RESULTS.md"), "w") as f:
    f.write("\n".join(lines))
  return plots


