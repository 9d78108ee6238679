"""Synthetic families of neural codes with a known ground truth: each family carries one code."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.utils import Bunch

from nfestimators.data import SpikeWindows

from nfestimators.data.units import seconds_to_bins

from ._random import check_positive, seed_sequence

__all__ = ["make_code_data"]

CODES = ("rate", "identity", "order", "latency", "synchrony", "behavior")

_RATE_GAIN_SD = 1.0        # SD of the per-class log-gain of a coding cell ("rate")
_SEQUENCE_GAP_JITTERS = 3  # gap between successive cells of a sequence, in units of jitter
_LATENCY_FIRST = 0.03      # s, latency of class 0 after the window start ("latency")
_LATENCY_STEP = 0.03       # s, latency added per class
_CELL_OFFSET = 0.01        # s, largest fixed per-cell offset of the response onset
_BURST = 0.02              # s, a response burst lasts this long ("latency")
_TUNING_WIDTH = 0.15       # SD of a coding cell's Gaussian tuning curve on [0, 1] ("behavior")
_BEHAVIOR_STEP = 0.08      # SD of the trial-to-trial drift of the behaviour on [0, 1]
_SYNC_PRECISION = 0.2      # jitter of a synchronous copy, in units of jitter (1 ms at 5 ms)

_DESCRIPTIONS = {
    "rate": "class sets the firing rate of each coding cell (a per-class log-gain)",
    "identity": "class sets which coding cells fire; every class has as many active cells "
                "at the same rate, so the total count carries nothing",
    "order": "class sets the firing order of a sequence of bursts of the coding cells; the "
             "sequence starts at a random time, counts and cells are the same in every class",
    "latency": "class sets the latency of a burst of every coding cell after the window start; "
               "counts are the same in every class",
    "synchrony": "class sets which pairs of coding cells fire together (shared spike times) "
                 "and which fire independently; rates are the same in every class",
    "behavior": "coding cells are tuned (Gaussian bumps) to a behaviour variable in [0, 1] "
                "that drifts from trial to trial; the target is that variable",
}


def _check_non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) \
            or value < 0:
        raise ValueError(f"{name} must be a non-negative number; got {value!r}.")
    return float(value)


def _distinct_subsets(rng, n_items, size, n_subsets, what):
    """``n_subsets`` different random subsets of ``size`` of ``range(n_items)``, as masks."""
    if math.comb(n_items, size) < n_subsets:
        raise ValueError(f"{what}: {n_items} items give only {math.comb(n_items, size)} "
                         f"different subsets of {size}, fewer than n_classes={n_subsets}; "
                         "raise n_neurons or coding_fraction, or lower n_classes.")
    chosen = set()
    while len(chosen) < n_subsets:
        chosen.add(tuple(sorted(rng.choice(n_items, size, replace=False))))
    masks = np.zeros((n_subsets, n_items), bool)
    for row, subset in zip(masks, rng.permutation(sorted(chosen))):
        row[list(subset)] = True
    return masks


def _distinct_orders(rng, n_items, n_orders):
    """``n_orders`` different random permutations of ``range(n_items)``."""
    if math.factorial(n_items) < n_orders:
        raise ValueError(f"order: {n_items} coding cells have only {math.factorial(n_items)} "
                         f"orders, fewer than n_classes={n_orders}; raise n_neurons or "
                         "coding_fraction.")
    chosen = []
    while len(chosen) < n_orders:
        order = tuple(rng.permutation(n_items))
        if order not in chosen:
            chosen.append(order)
    return np.array(chosen)


def _poisson_times(rng, rates, duration):
    """Homogeneous Poisson spikes: ``rates`` (n_trials, n_cells) in Hz over ``[0, duration)``.
    Returns times, cell and trial of every spike."""
    counts = rng.poisson(rates * duration)
    trial, cell = np.nonzero(counts)
    repeats = counts[trial, cell]
    return (rng.uniform(0, duration, repeats.sum()), np.repeat(cell, repeats),
            np.repeat(trial, repeats))


def _bursts(rng, onsets, n_spikes_mean, spread):
    """A burst per (trial, cell): Poisson(``n_spikes_mean``) spikes, each at its onset plus
    ``spread(n)`` (a callable drawing n offsets). ``onsets`` is (n_trials, n_cells)."""
    counts = rng.poisson(n_spikes_mean, onsets.shape)
    trial, cell = np.nonzero(counts)
    repeats = counts[trial, cell]
    trial, cell = np.repeat(trial, repeats), np.repeat(cell, repeats)
    return onsets[trial, cell] + spread(len(trial)), cell, trial


def _rate_code(rng, labels, n_coding, n_classes, p):
    gain = np.exp(_RATE_GAIN_SD * rng.standard_normal((n_classes, n_coding)))
    gain /= gain.mean(axis=0, keepdims=True)  # every cell's rate averaged over classes = rate
    return _poisson_times(rng, p.rate * gain[labels], p.window), Bunch(class_gain=gain)


def _identity_code(rng, labels, n_coding, n_classes, p):
    active = _distinct_subsets(rng, n_coding, n_coding // 2, n_classes, "identity")
    return _poisson_times(rng, p.rate * active[labels], p.window), Bunch(class_active=active)


def _order_code(rng, labels, n_coding, n_classes, p):
    orders = _distinct_orders(rng, n_coding, n_classes)  # orders[c, k]: k-th cell of class c
    gap = max(_SEQUENCE_GAP_JITTERS * p.jitter, p.dt)
    margin = 3 * p.jitter
    latest = p.window - margin - (n_coding - 1) * gap
    if latest < margin:
        raise ValueError(f"order: a sequence of {n_coding} cells {gap:g} s apart (3 x jitter) "
                         f"does not fit in window={p.window:g} s; lengthen the window or lower "
                         "jitter, n_neurons or coding_fraction.")
    rank = np.argsort(orders, axis=1)  # rank[c, cell]: position of the cell in the sequence
    start = rng.uniform(margin, latest, len(labels))
    onsets = start[:, None] + gap * rank[labels]
    spikes = _bursts(rng, onsets, p.rate * p.window, lambda n: p.jitter * rng.standard_normal(n))
    return spikes, Bunch(class_order=orders, sequence_gap=gap)


def _latency_code(rng, labels, n_coding, n_classes, p):
    latency = _LATENCY_FIRST + _LATENCY_STEP * np.arange(n_classes)
    if latency[-1] + _CELL_OFFSET + _BURST + 3 * p.jitter > p.window:
        raise ValueError(f"latency: the last class's burst ends after "
                         f"{latency[-1] + _CELL_OFFSET + _BURST + 3 * p.jitter:g} s, beyond "
                         f"window={p.window:g} s; lengthen the window or lower n_classes.")
    offset = rng.uniform(0, _CELL_OFFSET, n_coding)
    onsets = latency[labels][:, None] + offset[None] + p.jitter * rng.standard_normal(
        (len(labels), n_coding))
    spikes = _bursts(rng, onsets, p.rate * p.window, lambda n: rng.uniform(0, _BURST, n))
    return spikes, Bunch(class_latency=latency, cell_offset=offset)


def _synchrony_code(rng, labels, n_coding, n_classes, p):
    n_pairs = n_coding // 2
    if n_pairs < 2:
        raise ValueError(f"synchrony needs at least 4 coding cells (2 pairs); got {n_coding}; "
                         "raise n_neurons or coding_fraction.")
    pairs = rng.permutation(n_coding)[:2 * n_pairs].reshape(n_pairs, 2)
    synchronous = _distinct_subsets(rng, n_pairs, n_pairs // 2, n_classes, "synchrony")
    sync_of_trial = synchronous[labels]  # (n_trials, n_pairs)
    # independent pairs: each cell its own Poisson train at `rate`
    free = np.zeros((len(labels), n_coding))
    free[:, pairs[:, 0]] = ~sync_of_trial
    free[:, pairs[:, 1]] = ~sync_of_trial
    times, cell, trial = _poisson_times(rng, p.rate * free, p.window)
    # synchronous pairs: one shared train at `rate`, copied to both cells, each copy jittered
    shared, pair, shared_trial = _poisson_times(rng, p.rate * sync_of_trial, p.window)
    precision = _SYNC_PRECISION * p.jitter
    copies = [shared + precision * rng.standard_normal(len(shared)) for _ in range(2)]
    times = np.concatenate([times, *copies])
    cell = np.concatenate([cell, pairs[pair, 0], pairs[pair, 1]])
    trial = np.concatenate([trial, shared_trial, shared_trial])
    return (times, cell, trial), Bunch(pairs=pairs, class_synchronous=synchronous)


def _drifting_behavior(rng, n_trials):
    """A random walk on [0, 1] (reflected at the edges), one value per trial."""
    walk = rng.uniform() + np.cumsum(_BEHAVIOR_STEP * rng.standard_normal(n_trials))
    folded = np.mod(walk, 2.0)
    return np.where(folded > 1.0, 2.0 - folded, folded)


def _behavior_code(rng, target, n_coding, p):
    center = rng.permutation(np.linspace(0, 1, n_coding))
    bump = np.exp(-0.5 * ((target[:, None] - center[None]) / _TUNING_WIDTH) ** 2)
    peak = p.rate / (_TUNING_WIDTH * np.sqrt(2 * np.pi))  # mean rate over v in [0, 1] ~ rate
    return _poisson_times(rng, peak * bump, p.window), Bunch(tuning_center=center,
                                                             tuning_peak=peak)


def make_code_data(code, *, n_classes=4, n_trials=400, n_neurons=40, window=0.5, dt=0.001,
                   rate=10.0, noise=2.0, jitter=0.005, coding_fraction=0.25,
                   random_state=None):
    """Generate trials whose class (or target) is carried by exactly one neural code.

    Every trial is one window of ``window`` seconds. Every neuron fires background Poisson
    spikes at ``noise`` Hz, the same in every class. A random subset of ``coding_fraction`` of
    the neurons (the coding cells, at least 2) adds spikes that carry the code; everything
    else is held constant across classes, so a decoder succeeds only by reading that code:

    * ``"rate"``: coding cell ``n`` fires Poisson spikes at ``rate * g[c, n]`` in class ``c``,
      a log-normal gain (log SD 1) normalised so that its mean over classes is 1.
    * ``"identity"``: each class has its own set of half of the coding cells (the sets
      differ); those fire at ``rate``, the others add nothing. Every class has as many
      active cells at the same rate, so the total spike count carries no information.
    * ``"order"``: every coding cell fires a burst (Poisson(``rate * window``) spikes, each
      jittered by ``jitter``) at its place in a sequence; successive cells are
      ``3 * jitter`` apart (at least ``dt``); the order is the class and the sequence starts
      at a uniformly random time in every trial, so the latency of a cell varies. Counts and
      cells are the same in every class.
    * ``"latency"``: every coding cell fires a burst (Poisson(``rate * window``) spikes spread
      over 20 ms) after a latency of ``30 ms + 30 ms * c`` in class ``c``, plus a fixed
      per-cell offset (up to 10 ms) and a trial-to-trial jitter (SD ``jitter``). Counts are
      the same in every class.
    * ``"synchrony"``: the coding cells form pairs; in each class a different half of the
      pairs fire together (one shared Poisson train at ``rate``, each copy jittered by
      ``jitter / 5``: synchrony is a millisecond code at the default ``jitter``), the other
      pairs fire independently at ``rate``. Every cell fires at ``rate`` in every class.
    * ``"behavior"``: a behaviour variable in [0, 1] drifts from trial to trial (a reflected
      random walk); coding cells have Gaussian tuning curves (SD 0.15) tiling [0, 1], with a
      mean rate over the variable of about ``rate``. The target is the variable (a
      regression); ``n_classes`` is not used.

    Classes are balanced and shuffled across trials. Spikes are binned at ``dt``; spike times
    jittered out of the window are clipped to its edges.

    Parameters
    ----------
    code : {"rate", "identity", "order", "latency", "synchrony", "behavior"}
        The code that carries the class (or the target).
    n_classes : int, default=4
        Number of classes (at least 2).
    n_trials : int, default=400
        Number of trials (windows), at least ``2 * n_classes``.
    n_neurons : int, default=40
        Number of neurons (at least 2).
    window : float, default=0.5
        Trial (window) length in seconds, a whole number of ``dt`` bins.
    dt : float, default=0.001
        Bin width in seconds.
    rate : float, default=10.0
        Firing rate (Hz) of the code-carrying spikes of a coding cell; with ``noise`` it sets
        the spike density.
    noise : float, default=2.0
        Background Poisson rate (Hz) of every neuron; 0 for none.
    jitter : float, default=0.005
        SD (s) of the trial-to-trial timing jitter of the code-carrying spikes; 0 for none.
    coding_fraction : float, default=0.25
        Fraction of the neurons that carry the code, in (0, 1].
    random_state : int, numpy Generator or RandomState, default=None
        Seed; the same seed gives the same data.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        * ``windows``: :class:`~nfestimators.data.SpikeWindows`, one window per trial (no past
          window), ``windows.trial`` the trial index.
        * ``labels``: ndarray (n_trials,) of int in ``0..n_classes-1`` (classification
          codes), or ``target``: ndarray (n_trials,) of float in [0, 1] (``"behavior"``).
        * ``coding_cells``: ndarray of int, the neurons that carry the code.
        * ``params``: Bunch of the ground truth of the code, cells given as indices into
          ``coding_cells``: ``class_gain`` (n_classes, n_coding), ``class_active`` (masks),
          ``class_order`` (``class_order[c]``: the cells in firing order) and
          ``sequence_gap``, ``class_latency`` and ``cell_offset``, ``pairs`` (n_pairs, 2) and
          ``class_synchronous`` (masks over pairs), ``tuning_center`` and ``tuning_peak``.
        * ``code``, ``dt``, ``window``, and ``description`` (also as ``DESCR``): what the
          family is, in one sentence.

    Examples
    --------
    >>> from nfestimators.datasets import make_code_data
    >>> data = make_code_data("order", n_trials=40, random_state=0)
    >>> data.windows.shape, sorted(set(data.labels.tolist()))
    ((40, 40, 500), [0, 1, 2, 3])
    >>> make_code_data("behavior", n_trials=10, random_state=0).target.shape
    (10,)
    """
    if code not in CODES:
        raise ValueError(f"code must be one of {list(CODES)}; got {code!r}.")
    n_classes = check_positive(n_classes, "n_classes", integer=True)
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2; got {n_classes}.")
    n_trials = check_positive(n_trials, "n_trials", integer=True)
    if code != "behavior" and n_trials < 2 * n_classes:
        raise ValueError(f"n_trials={n_trials} must be at least 2 * n_classes = "
                         f"{2 * n_classes} (two trials per class).")
    n_neurons = check_positive(n_neurons, "n_neurons", integer=True)
    dt = check_positive(dt, "dt")
    window = round(seconds_to_bins(check_positive(window, "window"), dt, "window", minimum=1) * dt, 9)
    p = Bunch(window=window, dt=dt, rate=check_positive(rate, "rate"),
              noise=_check_non_negative(noise, "noise"),
              jitter=_check_non_negative(jitter, "jitter"))
    coding_fraction = check_positive(coding_fraction, "coding_fraction")
    if coding_fraction > 1:
        raise ValueError(f"coding_fraction must lie in (0, 1]; got {coding_fraction}.")
    n_coding = round(coding_fraction * n_neurons)
    if n_coding < 2:
        raise ValueError(f"coding_fraction={coding_fraction} of n_neurons={n_neurons} leaves "
                         f"{n_coding} coding cell(s); at least 2 are needed.")

    rng_code, rng_labels, rng_noise = (
        np.random.default_rng(s) for s in seed_sequence(random_state).spawn(3))
    coding_cells = np.sort(rng_code.choice(n_neurons, n_coding, replace=False))
    if code == "behavior":
        target = _drifting_behavior(rng_labels, n_trials)
        spikes, params = _behavior_code(rng_code, target, n_coding, p)
    else:
        labels = rng_labels.permutation(np.arange(n_trials) % n_classes)
        family = {"rate": _rate_code, "identity": _identity_code, "order": _order_code,
                  "latency": _latency_code, "synchrony": _synchrony_code}[code]
        spikes, params = family(rng_code, labels, n_coding, n_classes, p)
    times, cell, trial = spikes
    noise_times, noise_units, noise_trial = _poisson_times(
        rng_noise, np.full((n_trials, n_neurons), p.noise), window)
    times = np.clip(np.concatenate([times, noise_times]), 0.0, window - dt / 2)
    units = np.concatenate([coding_cells[cell], noise_units])
    spike_trial = np.concatenate([trial, noise_trial])
    windows = SpikeWindows.from_spike_times(
        times, units, np.full(n_trials, window), dt=dt, window=window, n_neurons=n_neurons,
        trial=np.arange(n_trials), spike_trial=spike_trial)
    description = (f"make_code_data({code!r}): {_DESCRIPTIONS[code]}. {n_trials} trials of "
                   f"{window:g} s at dt={dt:g} s, {n_neurons} neurons ({n_coding} coding), "
                   f"code rate {p.rate:g} Hz, background {p.noise:g} Hz, jitter {p.jitter:g} s.")
    out = Bunch(windows=windows, coding_cells=coding_cells, params=params, code=code, dt=dt,
                window=window, description=description, DESCR=description)
    if code == "behavior":
        out.target = target
    else:
        out.labels = labels
    return out
