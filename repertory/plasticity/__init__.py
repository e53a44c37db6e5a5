"""Plasticity diagnostics and interventions (issue: plasticity toolkit): measures, probes, the learner-side
diagnostics and the interventions, all below the agents layer."""
