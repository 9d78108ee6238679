"""Spike events cut into windows: the sorted-event arrays every builder produces."""

from __future__ import annotations

import numpy as np

from .units import offsets_from_lengths, ranges_index

__all__ = ["gather_events", "sorted_events_from_counts", "window_events"]


def sorted_events_from_counts(counts):
    """Events of a (n_neurons, n_bins) raster as (bin, neuron) pairs, one per spike,
    sorted by bin then neuron (the token order of spec 2.3).

    Examples
    --------
    >>> bins, neurons = sorted_events_from_counts(np.array([[0, 2], [1, 0]]))
    >>> bins.tolist(), neurons.tolist()
    ([0, 1, 1], [1, 0, 0])
    """
    neurons, bins = np.nonzero(counts)  # sorted by neuron, then bin
    order = np.argsort(bins, kind="stable")  # by bin; ties keep ascending neuron
    neurons, bins = neurons[order], bins[order]
    reps = counts[neurons, bins].astype(np.int64)
    return np.repeat(bins, reps).astype(np.int64), np.repeat(neurons, reps).astype(np.int32)


def gather_events(keys, neurons, starts, ends):
    """Events with ``starts[w] <= key < ends[w]`` for every window w.

    ``keys`` is sorted (ties ordered by neuron). Returns neuron ids, keys relative to each
    window's start, and CSR offsets.
    """
    lo = np.searchsorted(keys, starts, side="left")
    hi = np.searchsorted(keys, ends, side="left")
    index, lengths = ranges_index(lo, hi)
    rel = keys[index] - np.repeat(starts, lengths)
    return neurons[index], rel.astype(np.int32), offsets_from_lengths(lengths)


def window_events(keys, neurons, ends, n_bins, n_prev, firsts):
    """Current and past events of windows ending at bin ``ends``, as SpikeWindows fields.

    ``firsts`` is the first bin of each window's trial: a past window is clipped there (its
    bins still count from the nominal past-window start, so the clipped bins are empty).
    """
    starts = ends - n_bins
    neuron, rel, offsets = gather_events(keys, neurons, starts, ends)
    fields = dict(neuron=neuron, bin=rel, offsets=offsets)
    if n_prev:
        prev_start = starts - n_prev
        p_neuron, p_rel, p_offsets = gather_events(keys, neurons, np.maximum(prev_start, firsts),
                                                   starts)
        p_rel = p_rel + np.repeat(np.maximum(firsts - prev_start, 0), np.diff(p_offsets))
        fields.update(prev_neuron=p_neuron, prev_bin=p_rel, prev_offsets=p_offsets)
    return fields
