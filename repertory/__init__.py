"""repertory: a distributed reinforcement-learning agent platform (JAX, Haiku, Reverb, Ray)."""

__version__ = "0.1.0"
