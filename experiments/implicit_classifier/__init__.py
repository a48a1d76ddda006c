"""A small deep-equilibrium classifier on synthetic spirals: the solver core reused
outside optical flow. ``python -m experiments.implicit_classifier.train --help``."""
