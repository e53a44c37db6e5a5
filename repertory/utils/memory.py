"""Keeping freed memory in the process, so that per-step batches are not page-faulted in again.

A DER step allocates and frees several arrays of about a megabyte (a batch's frames, their stack over updates
and runs). glibc's malloc maps such blocks fresh and gives them back when freed (its mmap and trim thresholds
adapt, but the heap's top is still trimmed between steps), so every step touches ~850 new pages: ~0.85 ms of
page faults per 32-transition Atari batch on this project's CPU (BUILD_NOTES.md, "Host work of an Atari step").
Raising both thresholds keeps the freed blocks for reuse.
"""

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_BYTES = 64 << 20  # blocks below this come from the heap, and are reused once freed
TRIM_THRESHOLD_BYTES = 256 << 20  # free memory the heap keeps at its top before giving it back


def keep_freed_memory() -> bool:
  """Raises glibc's malloc thresholds for this process; False (and nothing changed) where the C library has no
  `mallopt` (not glibc) or refuses the settings."""
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
  return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
