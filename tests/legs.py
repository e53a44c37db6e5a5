"""Which test leg runs (BUILD_NOTES.md, "Two test legs"), and `one_leg` for slow tests run on one of them."""

import sys

import pytest

LEG = 1 if sys.version_info < (3, 12) else 2


def one_leg(leg: int):
  """For a slow test whose code path is the same on both legs (the same Ray 2.60, the same replay backend
  where it names one, the same JAX code with a learning threshold met on both): it runs on `leg` only, so
  that `make test` stays within its budget. Alternate the legs to keep them even (BUILD_NOTES.md, "make test")."""
  return pytest.mark.skipif(LEG != leg, reason=f"the same code path on both legs; runs on leg {leg} only")
