"""Image augmentations applied by learners to training batches."""

import jax
import jax.numpy as jnp


def random_shift(key: jax.Array, images: jax.Array, pad: int) -> jax.Array:
  """DrQ-v2 augmentation (Yarats et al. 2021, arXiv 2107.09645, Sec. 3.1): replicate-pad by `pad`, crop back
  at a random integer offset per image (the authors' bilinear sampling adds sub-pixel jitter; not done here)."""
  if pad <= 0:
    return images
  batch, height, width = images.shape[:3]
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
  offsets = jax.random.randint(key, (batch, 2), 0, 2 * pad + 1)

  def crop(image, offset):
    return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, image.shape[-1]))

  return jax.vmap(crop)(padded, offsets)
