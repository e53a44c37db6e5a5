"""The Atari 100k reference table (random, human and published per-game scores) and human-normalised scores.

HNS = (score − random) / (human − random) (Atari 100k protocol, Kaiser et al. 2020, arXiv 1903.00374), with
the table shipped in `repertory/data/atari100k_reference.csv`.
"""

import functools
import importlib.resources
import re
from typing import Any, Dict, List, Sequence, Union

import numpy as np
import pandas as pd

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
