"""Datasets: a synthetic generator with a known ground truth, and loaders that take a path."""

from ._synthetic import make_spiking_data

__all__ = ["make_spiking_data"]
