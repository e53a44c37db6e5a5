"""repertory: a distributed reinforcement-learning agent platform."""

from setuptools import find_packages, setup

CORE = [
    "numpy<2",  # TensorFlow 2.15 (Reverb) is built against NumPy 1.x.
    "jax==0.4.34",  # newest JAX whose ml-dtypes is compatible with TensorFlow 2.15.
    "jaxlib==0.4.34",
    "dm-haiku==0.0.13",
    "optax",
    "chex",
    "rlax==0.1.7",
    "distrax==0.1.5",
    "tensorflow-probability==0.23.0",  # 0.24+ refuses TensorFlow 2.15 on first use (BUILD_NOTES.md).
    "dm-env",
    "dm-tree",
    "dm-reverb==0.14.0",
    "tensorflow-cpu~=2.15.0",
    "ray==2.60.0",  # Ray core only, not ray[default].
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
    "dev": ["pytest"],
}

setup(
    name="repertory",
    version="0.1.0",
    description="A distributed reinforcement-learning agent platform (JAX, Haiku, Reverb, Ray).",
    packages=find_packages(include=["repertory", "repertory.*"]),
    package_data={"repertory": ["data/*.csv"]},
    python_requires=">=3.11",
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["repertory=repertory.launch.cli:main"]},
)
