"""Soft actor-critic (Haarnoja et al. 2018, arXiv 1812.05905) with clipped double-Q or GPL pessimism."""
