"""Plasticity injection (Nikishin et al. 2023, "Deep Reinforcement Learning with Plasticity Injection",
arXiv 2305.15555, §4, eq. 1).

At update T the head h_θ is frozen and two fresh copies θ′, θ″ with identical values are added:

    output(x) = h_θ(φ(x)) + h_θ′(φ(x)) − h_θ″(φ(x)),   θ frozen, θ″ frozen, θ′ trained,

so the output is unchanged at T (θ′ = θ″) and the number of trained parameters stays the same (θ′ replaces θ).

`InjectableHead` builds the three heads from the start, so the parameter tree (and the optimiser state, the
checkpoints and every actor's network) never changes shape. A scalar `active` parameter selects the sum:
before injection the output is h_θ + 0, after it h_θ + (h_θ′ − h_θ″). θ′ and θ″ get no update before
injection (`freeze_by_injection` zeroes them), so θ′ is still at its fresh initial values when `inject`
copies it into θ″ and sets `active`. Because h_θ′ and h_θ″ then run the same operations on the same values,
their difference is exactly 0 and every output is bit-for-bit what it was.
"""

from typing import Any, Callable, Iterable, Mapping

import haiku as hk
import jax
import jax.numpy as jnp
import optax

SCOPE = "injectable_head"
HEAD, INJECTED, INJECTED_COPY = "head", "injected_head", "injected_copy"  # θ, θ′, θ″
ACTIVE = "active"


class InjectableHead(hk.Module):
  """h_θ(x) + [active]·(h_θ′(x) − h_θ″(x)) with `make_head(name)` building each head (any pytree output)."""

  def __init__(self, make_head: Callable[[str], Callable[..., Any]], name: str = SCOPE):
    super().__init__(name=name)
    self._make_head = make_head

  def __call__(self, *args: Any) -> Any:
    active = hk.get_parameter(ACTIVE, (), jnp.float32, init=jnp.zeros)
    key = hk.maybe_next_rng_key()  # one key for the three heads: noisy heads draw the same noise

    def run(role: str) -> Any:
      if key is None:
        return self._make_head(role)(*args)
      with hk.with_rng(key):
        return self._make_head(role)(*args)

    original, injected, copy = run(HEAD), run(INJECTED), run(INJECTED_COPY)
    return jax.tree.map(lambda o, new, old: o + jnp.where(active > 0, new - old, jnp.zeros_like(o)),
                        original, injected, copy)


def _role(module: str, scope: str) -> str:
  """Which part of an injectable head the Haiku module `module` belongs to ('' outside it)."""
  if module == scope:
    return ACTIVE
  for role in (INJECTED_COPY, INJECTED, HEAD):  # longest first: "injected_copy" starts with "injected"
    if module.startswith(f"{scope}/~/{role}") or module.startswith(f"{scope}/{role}"):
      return role
  return ""


def injection_scopes(params: Mapping[str, Any]) -> Iterable[str]:
  """The scopes (module names) of the injectable heads in `params`."""
  return sorted(m for m, leaves in params.items() if isinstance(leaves, Mapping) and ACTIVE in leaves
                and m.rsplit("/", 1)[-1].startswith(SCOPE))


def is_injected(params: Mapping[str, Any]) -> bool:
  scopes = list(injection_scopes(params))
  return bool(scopes) and all(bool(params[s][ACTIVE] > 0) for s in scopes)


def _trained(role: str, active: Any) -> Any:
  """Whether parameters of `role` are trained: θ before injection, θ′ after, the rest never; outside: always."""
  if role == HEAD:
    return jnp.logical_not(active)
  if role == INJECTED:
    return active
  return role == ""


def _scope_of(module: str, scopes: Iterable[str]) -> str:
  return next((s for s in scopes if module == s or module.startswith(s + "/")), "")


def inject(params: Mapping[str, Any]) -> Any:
  """`params` with θ″ := θ′ and `active` = 1 in every injectable head (eq. 1 at update T)."""
  scopes = list(injection_scopes(params))
  out = {m: dict(leaves) for m, leaves in params.items()}
  for module in params:
    scope = _scope_of(module, scopes)
    if scope and _role(module, scope) == INJECTED:
      copy = module.replace(f"{scope}/~/{INJECTED}", f"{scope}/~/{INJECTED_COPY}", 1).replace(
          f"{scope}/{INJECTED}", f"{scope}/{INJECTED_COPY}", 1)
      out[copy] = dict(params[module])
  for scope in scopes:
    out[scope][ACTIVE] = jnp.ones_like(params[scope][ACTIVE])
  return out


def trained_mask(params: Any) -> Any:
  """A tree like `params` (a dict of Haiku modules, or a tuple of them) of booleans: which are trained now."""
  if isinstance(params, (tuple, list)):
    return type(params)(trained_mask(p) for p in params)
  scopes = list(injection_scopes(params))

  def module_mask(module, leaves):
    scope = _scope_of(module, scopes)
    trained = _trained(_role(module, scope), params[scope][ACTIVE] > 0) if scope else True
    return {name: trained for name in leaves}

  return {m: module_mask(m, leaves) for m, leaves in params.items()}


def trained_parameter_count(params: Mapping[str, Any]) -> int:
  """How many scalars the optimiser changes now (eq. 1 keeps it the same before and after injection)."""
  mask = trained_mask(params)
  return sum(int(x.size) for x, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask)) if bool(m))


class InjectionSchedule:
  """The host side of an injection: due once, on the first learner call at or past update `step`. Whether it
  has happened is read from the parameters once (again after a restore, `forget`), then kept on the host."""

  def __init__(self, step: int):
    self.step = step
    self._done: Any = None

  def due(self, steps: int, host_params: Callable[[], Mapping[str, Any]]) -> bool:
    """Whether to inject now; `host_params()` reads the current parameters. A True answer counts as done."""
    if not self.step or steps < self.step:
      return False
    if self._done is None:
      self._done = is_injected(host_params())
    if self._done:
      return False
    self._done = True
    return True

  def forget(self) -> None:
    self._done = None


def freeze_by_injection() -> optax.GradientTransformation:
  """Zeroes the updates of the parameters `trained_mask` says are frozen (put last in the optimiser chain)."""

  def update(updates, state, params=None):
    if params is None:
      raise ValueError("freeze_by_injection needs the parameters: call optimizer.update(grads, state, params)")
    mask = trained_mask(params)
    return jax.tree.map(lambda u, m: jnp.where(m, u, jnp.zeros_like(u)), updates, mask), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
