"""repertory: a distributed reinforcement-learning agent platform."""

from setuptools import find_packages, setup

# Two stacks, one code base (BUILD_NOTES.md, "Two test legs"). Leg 1: Python 3.11 with Reverb, which
# pins TensorFlow 2.15 and everything below it. Leg 2: Python >= 3.12 with current JAX and no
# TensorFlow or Reverb (replay is the native service there).
LEG1 = 'python_version < "3.12"'
LEG2 = 'python_version >= "3.12"'

CORE = [
    f"numpy<2; {LEG1}",  # TensorFlow 2.15 (Reverb) is built against NumPy 1.x.
    f"numpy>=2; {LEG2}",
    f"jax==0.4.34; {LEG1}",  # newest JAX whose ml-dtypes is compatible with TensorFlow 2.15.
    f"jaxlib==0.4.34; {LEG1}",
    f"jax>=0.10; {LEG2}",
    f"jaxlib>=0.10; {LEG2}",
    f"dm-haiku==0.0.13; {LEG1}",
    f"dm-haiku>=0.0.17; {LEG2}",  # 0.0.13-0.0.16 predate JAX 0.11's tracing API.
    f"rlax==0.1.7; {LEG1}",
    f"rlax>=0.1.9; {LEG2}",
    f"distrax==0.1.5; {LEG1}",
    f"distrax>=0.1.9; {LEG2}",  # requires tfp-nightly itself; tensorflow-probability 0.25 breaks on JAX 0.12.
    f"tensorflow-probability==0.23.0; {LEG1}",  # 0.24+ refuses TensorFlow 2.15 on first use (BUILD_NOTES.md).
    f"dm-reverb==0.14.0; {LEG1}",  # no wheel for Python 3.12: leg 2 uses the native replay service.
    f"tensorflow-cpu~=2.15.0; {LEG1}",
    "optax",
    "chex",
    "dm-env",
    "dm-tree",
    "ray==2.60.0",  # Ray core only, not ray[default].
    "psutil",  # the Ray reaper and `bench faults` follow process trees.
    "orbax-checkpoint",
    "gymnasium",
    "matplotlib",
    "pandas<3",  # rliable needs arch<8, and arch 7.2 fails to import with pandas 3 (BUILD_NOTES.md).
    "tabulate",
    "tensorboardX",
    "tqdm",
    "rliable",
]

EXTRAS = {
    "atari": ["ale-py>=0.12"],
    "memory": ["minigrid", "popgym", "memory-maze", "dm_control==1.0.50", "mujoco==3.17.0"],
    "control": ["dm_control==1.0.50", "mujoco==3.17.0"],
    "dev": ["pytest", "pytest-xdist"],
}

setup(
    name="repertory",
    version="0.1.0",
    description="A distributed reinforcement-learning agent platform (JAX, Haiku, Ray; Reverb where it installs).",
    packages=find_packages(include=["repertory", "repertory.*"]),
    package_data={"repertory": ["data/*.csv"]},
    python_requires=">=3.11",
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["repertory=repertory.cli:main"]},
)
