"""Pieces every actor shares: a parameter copy refreshed from the learner, and adder bookkeeping."""

from typing import Any, Optional, Tuple

import dm_env
import numpy as np


class VariableClient:
  """Keeps a copy of the learner's parameters, refreshed every `period` calls to `maybe_update`.

  With `sparsity` > 0 the copy has that fraction of every weight tensor `w` zeroed by magnitude
  (`networks.sparse.prune_by_magnitude`): evaluation at a target sparsity, as Powerpropagation prunes a
  trained network (Schwarz et al. 2021, arXiv 2110.00296, §4). For a Powerprop layer the stored v ranks as
  its weight w = v|v|^(α−1) does, so pruning v keeps the same entries as pruning w. `weight_names` are the
  keys of the tensors pruned (`w`; DER adds its noisy head's mean weights `w_mu`).
  """

  def __init__(self, source: Any, period: int, sparsity: float = 0.0, weight_names: Tuple[str, ...] = ("w",)):
    self._source = source
    self._period = max(1, period)
    self._sparsity = sparsity
    self._weight_names = weight_names
    self._calls = 0
    self._fetched = None  # the leaves of the source's variables that `params` was pruned from
    self._held = None
    self.params = self._fetch()

  @property
  def calls(self) -> int:
    return self._calls

  def hold(self, view: Any) -> None:
    """For actors whose parameters a caller fetches (runs sharing one policy call): `view()` gives
    (params, calls) as this client would hold them, for its snapshot."""
    self._held = view

  def snapshot_state(self) -> dict:  # what a resumed run needs (utils.snapshots)
    params, calls = self._held() if self._held is not None else (self.params, self._calls)
    return {"params": params, "calls": calls}

  def restore_snapshot(self, state: dict) -> None:
    self.params, self._calls = state["params"], state["calls"]

  def _fetch(self) -> Any:
    variables = self._source.get_variables()
    if not self._sparsity:
      return variables
    import jax
    leaves = jax.tree_util.tree_leaves(variables)
    fetched = self._fetched
    if fetched is None or len(leaves) != len(fetched) or any(a is not b for a, b in zip(leaves, fetched)):
      from repertory.networks.sparse import prune_by_magnitude  # an evaluator fetches every step: prune what is new
      self._fetched, self._pruned = leaves, prune_by_magnitude(variables, self._sparsity, self._weight_names)
    return self._pruned

  def maybe_update(self) -> None:
    self._calls += 1
    if self._calls % self._period == 0:
      self.params = self._fetch()


class FeedForwardActor:
  """An actor without recurrent state: subclasses give `select_actions(observations [N, ...])`.

  `adder` is one adder, or a list with one adder per environment of a vectorised environment.
  """

  SNAPSHOT_FIELDS = ("_client", "_steps", "_adders")

  def __init__(self, client: VariableClient, adder: Optional[Any] = None):
    self._client = client
    self._adders = adder if isinstance(adder, (list, tuple)) else [adder]
    self._steps = 0

  @property
  def client(self) -> VariableClient:
    return self._client

  def select_actions(self, observations: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  def select_action(self, observation: np.ndarray) -> np.ndarray:
    return self.select_actions(np.asarray(observation)[None])[0]

  def observe_first(self, timestep: dm_env.TimeStep, index: int = 0) -> None:
    if self._adders[index] is not None:
      self._adders[index].add_first(timestep)

  def observe(self, action: np.ndarray, next_timestep: dm_env.TimeStep, index: int = 0) -> None:
    self._steps += 1
    if self._adders[index] is not None:
      self._adders[index].add(action, next_timestep)

  def update(self) -> None:
    self._client.maybe_update()
