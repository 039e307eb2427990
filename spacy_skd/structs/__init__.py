"""Distributions over structures, in pure torch (no spaCy, no thinc)."""
