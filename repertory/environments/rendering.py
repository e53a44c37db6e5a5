"""Which OpenGL backend MuJoCo (dm_control, memory-maze) can render with, headless.

MuJoCo picks its backend from the `MUJOCO_GL` environment variable when `dm_control` / `mujoco`
is first imported, so it must be set before that import: call `require_gl_backend()` first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from repertory.errors import ConfigError

_DISABLED = ("off", "disable", "disabled", "false", "0")

_INSTALL_HINT = ("install libegl1 or libosmesa6 (apt-get install libosmesa6) and set "
                 "MUJOCO_GL=osmesa")


def _load(library: str):
  """The shared library `library` (e.g. 'EGL', 'OSMesa') as a ctypes CDLL, or None."""
  path = ctypes.util.find_library(library)
  if not path:
    return None
  try:
    return ctypes.CDLL(path)
  except OSError:
    return None


def _egl_usable() -> bool:
  """libEGL loads and, where it can tell, reports at least one device (MuJoCo renders on one).

  libglvnd's libEGL loads even without a vendor driver (libegl-mesa0 or NVIDIA's); then
  `eglQueryDevicesEXT` finds no device and EGL rendering would fail at context creation.
  """
  lib = _load("EGL")
  if lib is None:
    return False
  try:
    get_proc = lib.eglGetProcAddress
    get_proc.restype = ctypes.c_void_p
    get_proc.argtypes = [ctypes.c_char_p]
    address = get_proc(b"eglQueryDevicesEXT")
    if not address:
      return True  # Cannot tell; trust the library.
    query_devices = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_int, ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.c_int))(address)
    count = ctypes.c_int(0)
    return bool(query_devices(0, None, ctypes.byref(count))) and count.value > 0
  except (AttributeError, OSError):
    return True


def gl_backend() -> str | None:
  """The MuJoCo GL backend to use: `MUJOCO_GL` if set, else 'egl', else 'osmesa', else None.

  A `MUJOCO_GL` that disables rendering ('disable', 'off', ...) gives None.
  """
  configured = os.environ.get("MUJOCO_GL")
  if configured is not None:
    return None if configured.lower() in _DISABLED else configured
  if _egl_usable():
    return "egl"
  if _load("OSMesa") is not None:
    return "osmesa"
  return None


def require_gl_backend(what: str) -> str:
  """Sets `MUJOCO_GL` to a usable backend and returns it, or raises ConfigError.

  Args:
    what: the environment that needs rendering, for the error message.
  """
  backend = gl_backend()
  if backend is None:
    raise ConfigError(f"{what} needs MuJoCo rendering through EGL or OSMesa; {_INSTALL_HINT}")
  os.environ["MUJOCO_GL"] = backend
  if backend in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", backend)
  return backend


def prepare_headless_physics() -> None:
  """Before importing dm_control for state-only tasks: pick a GL backend if one exists.

  Without this, dm_control tries GLFW and warns about a missing X display. When no backend is
  available, rendering is disabled for this process (state tasks do not render).
  """
  if "MUJOCO_GL" in os.environ:
    return
  backend = gl_backend()
  os.environ["MUJOCO_GL"] = backend if backend is not None else "disable"
  if backend in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", backend)
