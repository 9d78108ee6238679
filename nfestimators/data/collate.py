"""Token blocks of a whole dataset held as device tensors; padded batches cut from them."""

from __future__ import annotations

import numpy as np
import torch

from .tokenizer import SpikeTokens

__all__ = ["TokenStore"]


def _to_device(array, device, dtype=None):
    if array is None:
        return None
    tensor = torch.as_tensor(np.ascontiguousarray(array))
    if dtype is not None:
        tensor = tensor.to(dtype)
    if torch.device(device).type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


class TokenStore:
    """All token blocks of a dataset on one device, tokenized once per fit.

    ``batch(rows)`` gathers the rows on the device and cuts every block to the batch's own
    longest sequence (not to the full block size), so short windows cost short attention.
    ``batch(rows, targets=False)`` is the inference batch: inputs and context only, without
    the next-token targets (``target_id``, ``target_dt``) and the training targets
    (``y_reg``, ``y_cls``).
    Only the small index array crosses from host to device per batch, and the lengths used
    to trim stay on the host, so making a batch never waits for the GPU.

    Parameters
    ----------
    tokens : SpikeTokens
        Output of :meth:`SpikeTokenizer.transform`.
    device : str or torch.device
    stimulus : ndarray (n_frames_total, height, width), optional
        The shared movie; moved to the device once, as it is.
    frame_norm : (float, float), default=(0.0, 1.0)
        Mean and scale standardising the frames, applied to each batch's clips only.
    frame_index : ndarray (n_samples, n_frames), optional
    behavior : ndarray (n_samples, n_inputs), optional
        Behaviour inputs (already standardized).
    y_reg : ndarray (n_samples, n_targets), optional
    y_cls : ndarray (n_samples,), optional
        Class indices.
    unit_range : ndarray (n_samples, 2), optional
        Multi-session data: the ids ``[lo, hi)`` of every window's session in the
        concatenated unit vocabulary (an input of the id head, so in every batch).
    pad_multiple : int, default=8
        Sequence lengths are rounded up to a multiple of this (within the block size):
        fewer distinct shapes for kernel selection and compilation, aligned tensor cores.

    Examples
    --------
    >>> import numpy as np
    >>> from nfestimators import SpikeTokenizer, SpikeWindows
    >>> X = SpikeWindows.from_counts(np.eye(4, 40, dtype=int), dt=0.01, window=0.05,
    ...                              prev_window=0.05)
    >>> store = TokenStore(SpikeTokenizer().fit(X).transform(X), "cpu")
    >>> batch = store.batch(np.array([0, 1]))
    >>> sorted(batch), tuple(batch["id"].shape), tuple(batch["id_prev"].shape)
    (['dt', 'dt_prev', 'id', 'id_prev', 'target_dt', 'target_id'], (2, 8), (2, 8))
    >>> sorted(store.batch(np.array([0, 1]), targets=False))
    ['dt', 'dt_prev', 'id', 'id_prev']
    """

    def __init__(self, tokens: SpikeTokens, device, *, stimulus=None, frame_index=None,
                 frame_norm=(0.0, 1.0), behavior=None, y_reg=None, y_cls=None, unit_range=None,
                 pad_multiple=8):
        self.device = torch.device(device)
        self.pad_multiple = int(pad_multiple)
        self.length = np.asarray(tokens.length)
        self.prev_length = None if tokens.id_prev is None else np.asarray(tokens.prev_length)
        self.id = _to_device(tokens.id, device)
        self.dt_token = _to_device(tokens.dt_token, device)
        self.id_prev = _to_device(tokens.id_prev, device)
        self.dt_token_prev = _to_device(tokens.dt_token_prev, device)
        self.stimulus = _to_device(stimulus, device, torch.float32)
        self.frame_mean, self.frame_scale = (float(v) for v in frame_norm)
        self.frame_index = _to_device(frame_index, device, torch.long)
        self.behavior = _to_device(behavior, device, torch.float32)
        self.y_reg = _to_device(y_reg, device, torch.float32)
        self.y_cls = _to_device(y_cls, device, torch.long)
        self.unit_range = _to_device(unit_range, device, torch.long)

    def __len__(self):
        return len(self.length)

    def _round_up(self, n, limit):
        return min(-(-n // self.pad_multiple) * self.pad_multiple, limit)

    def batch(self, rows, *, targets=True):
        """The batch dict (``docs/design.md``) of the given row indices (a numpy int array).

        With ``targets=False`` the batch holds the model's inputs only (current tokens,
        past tokens, frames, behaviour): no ``target_id``, ``target_dt``, ``y_reg`` or
        ``y_cls``. Its inputs are the same tensors as with ``targets=True``.
        """
        rows = np.asarray(rows)
        if rows.size == 0:
            raise ValueError("a batch needs at least one row.")
        idx = _to_device(rows.astype(np.int64), self.device)
        # SOS + events (the last target is EOS), rounded up so that few distinct shapes occur
        n_cols = self._round_up(int(self.length[rows].max()) + 1, self.id.shape[1] - 1)
        n_read = n_cols + 1 if targets else n_cols  # the targets are the inputs shifted by one
        seq_id = self.id[idx, :n_read].long()
        seq_dt = self.dt_token[idx, :n_read].long()
        batch = {"id": seq_id[:, :n_cols], "dt": seq_dt[:, :n_cols]}
        if targets:
            batch["target_id"], batch["target_dt"] = seq_id[:, 1:], seq_dt[:, 1:]
        if self.id_prev is not None:
            n_prev = self._round_up(int(self.prev_length[rows].max()) + 2,  # SOS + events + EOS
                                    self.id_prev.shape[1])
            batch["id_prev"] = self.id_prev[idx, :n_prev].long()
            batch["dt_prev"] = self.dt_token_prev[idx, :n_prev].long()
        if self.stimulus is not None:
            clips = self.stimulus[self.frame_index[idx]].unsqueeze(1)  # (B, 1, F, H, W)
            batch["frames"] = (clips - self.frame_mean) / self.frame_scale
        inputs = ("behavior", "unit_range")
        for key in inputs + ("y_reg", "y_cls") if targets else inputs:
            value = getattr(self, key)
            if value is not None:
                batch[key] = value[idx]
        return batch
