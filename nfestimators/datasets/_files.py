"""File checks and readers shared by the dataset loaders (nothing is downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["existing_dir", "existing_file", "load_movie", "read_selection"]


def existing_file(path, what):
    """``path`` as a Path, refusing anything that is not an existing file."""
    path = Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {str(path)!r} is not a file.")
    return path


def existing_dir(path, what):
    """``path`` as a Path, refusing anything that is not an existing directory."""
    path = Path(os.fspath(path)).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {str(path)!r} is not a directory.")
    return path


def load_movie(file):
    """A movie array from .npy or a torch .pt file (loaded with weights_only=True)."""
    if file.suffix == ".pt":
        import torch

        movie = torch.load(file, map_location="cpu", weights_only=True)
        if not isinstance(movie, torch.Tensor):
            raise ValueError(f"{file.name} must hold one tensor, got {type(movie).__name__}.")
        return movie.numpy()
    return np.load(file, allow_pickle=False)


def read_selection(selection, folder, n_neurons):
    """1-based neuron indices from a CSV (name in ``folder``, or path) or an array."""
    if isinstance(selection, (str, os.PathLike)):
        candidates = [Path(os.fspath(selection)).expanduser(), folder / f"{selection}.csv",
                      folder / os.fspath(selection)]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            raise FileNotFoundError(f"selection file not found: tried "
                                    f"{[str(c) for c in candidates]}.")
        values = pd.read_csv(file, header=None).apply(pd.to_numeric, errors="coerce")
        values = values.to_numpy(dtype=np.float64).ravel()
        values = values[~np.isnan(values)]  # a header row, if any
    else:
        values = np.asarray(selection, dtype=np.float64).ravel()
    if values.size == 0 or np.any(values != np.round(values)):
        raise ValueError("selection must hold whole (1-based) neuron indices.")
    values = values.astype(np.int64)
    if values.min() < 1 or values.max() > n_neurons:
        raise ValueError(f"selection indices are 1-based and must lie in 1..{n_neurons}; "
                         f"found {values.min()}..{values.max()}.")
    if len(np.unique(values)) != len(values):
        raise ValueError("selection lists a neuron twice.")
    return values
