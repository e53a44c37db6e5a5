"""Published continuous-control scores to compare `repertory bench control` with.

Only numbers read in a source text, with where they were read; nothing is recalled from memory, and
environments without a confirmed number get none.
"""

import dataclasses
from typing import List, Tuple


@dataclasses.dataclass(frozen=True)
class Reference:
  """A published score: mean (± spread) at `steps` environment steps, with its source."""
  env: str
  method: str
  steps: int
  mean: float
  spread: float
  spread_kind: str
  source: str
  note: str = ""


_CURL = ("Srinivas, Laskin & Abbeel 2020, CURL (arXiv 2004.04136), Table 1 'STATE SAC' column (DMControl100k / "
         "DMControl500k); read in a text copy of the paper found with the code-search tool")
_CURL_NOTE = ("state-based SAC; '±' as printed (CURL reports mean & std over seeds for its own runs; the seed "
              "count and step convention of the State SAC baseline were not checked)")


_CURL_PIXEL_NOTE = ("from pixels; CURL's steps are environment steps (agent steps x action repeat, which CURL "
                    "sets per task), so compare with our agent steps x action repeat")


def _curl(env: str, state: Tuple[Tuple[float, float], Tuple[float, float]],
          curl: Tuple[Tuple[float, float], Tuple[float, float]],
          pixel_sac: Tuple[Tuple[float, float], Tuple[float, float]]) -> List[Reference]:
  rows = []
  for steps, i in ((100_000, 0), (500_000, 1)):
    rows.append(Reference(env, "SAC (state)", steps, *state[i], "±", _CURL, _CURL_NOTE))
    rows.append(Reference(env + "?pixels", "CURL (pixels)", steps, *curl[i], "± std, 10 seeds", _CURL, _CURL_PIXEL_NOTE))
    rows.append(Reference(env + "?pixels", "SAC (pixels)", steps, *pixel_sac[i], "±", _CURL, _CURL_PIXEL_NOTE))
  return rows


# (100k, 500k) for State SAC, CURL, Pixel SAC — CURL Table 1.
REFERENCES: Tuple[Reference, ...] = tuple(
    _curl("dmc:cheetah-run", ((616, 18), (795, 30)), ((299, 48), (518, 28)), ((197, 15), (197, 15)))
    + _curl("dmc:cartpole-swingup", ((835, 22), (848, 15)), ((582, 146), (841, 45)), ((419, 40), (419, 40)))
    + _curl("dmc:finger-spin", ((811, 46), (923, 21)), ((767, 56), (926, 45)), ((179, 66), (179, 166)))
    + _curl("dmc:reacher-easy", ((746, 25), (923, 24)), ((538, 233), (929, 44)), ((145, 30), (145, 30)))
    + _curl("dmc:walker-walk", ((891, 82), (948, 54)), ((403, 24), (902, 43)), ((42, 12), (42, 12)))
    + _curl("dmc:ball_in_cup-catch", ((746, 91), (974, 33)), ((769, 43), (959, 27)), ((312, 63), (312, 63))))

# Not found / not confirmed (so no numbers are given): GPL-SAC / GPL-DrQ per-task scores
# (arXiv 2110.03375 tables were not reachable as text), DrQ-v2 per-task numbers (arXiv 2107.09645
# reports curves), A-LIX per-task DMC numbers (arXiv 2207.00986).
UNCONFIRMED = ("GPL (arXiv 2110.03375) per-task scores: tables not read, none given",
               "DrQ-v2 (arXiv 2107.09645) per-task scores: reported as curves, none given",
               "A-LIX (arXiv 2207.00986) per-task DMC scores: not read, none given")


def base_env(env: str) -> str:
  """`dmc:cheetah-run?pixels=84` → `dmc:cheetah-run` (references are per task)."""
  return env.split("?", 1)[0]


def references_for(env: str) -> List[Reference]:
  """Published numbers for this task: state-based ones for state runs, pixel-based ones for pixel runs."""
  key = base_env(env) + ("?pixels" if "pixels=" in env else "")
  return [r for r in REFERENCES if r.env == key]
