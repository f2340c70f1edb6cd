"""Generators of the course's bundled, synthetic data sets (written to ``data/``).

``python -m bertlab.synth`` regenerates ``data/reviews`` and ``data/corpus``; the output is
deterministic, and a test checks that the committed files equal a fresh generation.
"""
