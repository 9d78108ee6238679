"""Parameter documentation shared by the estimators' docstrings."""

COMMON_PARAMETERS = """\
    preset : {{"small", "paper", "tiny"}}, default="small"
        Model size. ``"paper"`` is the lateral configuration of the paper (width 256, 8
        heads, 6 layers per stack, dropout 0.2; meant for a GPU); ``"small"`` trains on a
        CPU in minutes; ``"tiny"`` is for tests.
    n_layers, n_embd, n_head : int, optional
        Override the preset: layers of every stack, model width, attention heads.
    dropout : float, optional
        Override every dropout rate of the preset.
    max_tokens : int, optional
        Token budget of a current window (``block_size.id``). Windows with more spikes
        keep their latest ``max_tokens - 1`` and a warning says how many were dropped.
        Default: room for windows a quarter fuller than the fullest training window.
    max_prev_tokens : int, optional
        Token budget of a past window (``block_size.prev_id``); default as ``max_tokens``.
    behavior_inputs : list of str or "all", optional
        Behaviour variables of ``X`` (``X.behavior_names``) fed to the model as inputs
        through cross-attention. None uses none.
    round_counts : bool, default=False
        Round non-integer counts (e.g. deconvolved calcium "rates", which the original
        code rounds) to the nearest integer instead of raising an error.
    max_epochs : int, default={max_epochs}
        Passes over the training windows.
    batch_size : int, default=32
        Windows per optimisation step.
    lr : float, default={lr}
        Peak learning rate of AdamW (betas 0.9, 0.95), reached after a linear warmup and
        followed by a cosine decay to 10 %.
    weight_decay : float, default=0.1
        AdamW weight decay, applied to the weights of linear layers only.
    warmup_fraction : float, default=0.1
        Fraction of the steps spent in linear LR warmup.
    validation_fraction : float or None, default=0.1
        Fraction of the windows held out to monitor ``valid_loss`` (None: no validation).
    n_iter_no_change : int or None, default={n_iter_no_change}
        Early stopping: stop after this many epochs without a better ``valid_loss`` and
        restore the best weights. None trains for ``max_epochs``.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then the CPU; resolved into ``device_``.
    precision : {{"auto", "fp32", "bf16"}}, default="auto"
        ``"auto"`` trains in bf16 autocast on CUDA and in fp32 elsewhere.
    compile : bool, default=False
        Compile the attention blocks with ``torch.compile`` (dynamic shapes) for training.
    cuda_graphs : bool or "auto", default="auto"
        Capture the whole training step (forward, losses, backward, gradient clipping,
        AdamW) in a CUDA graph per padded batch shape and replay it, which removes the
        per-kernel launch cost that dominates small and medium models. ``"auto"`` uses
        graphs when training on one CUDA device without ``compile``; ``True`` asks for
        them (an error off CUDA). Batches are then padded to multiples of 32 tokens so
        that few shapes occur.
    callbacks : list of (name, skorch.callbacks.Callback), optional
        Extra skorch callbacks, passed to the training engine.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout and the validation split. Torch's
        global RNG is left as it was.
    verbose : int, default=0
        Show a tqdm progress bar over epochs with the current losses."""

FITTED_ATTRIBUTES = """\
    n_features_in_ : int
        Number of neurons seen in fit.
    device_ : str
        Device the model was trained on.
    cuda_graphs_ : bool
        Whether training steps ran as CUDA graph replays.
    tokenizer_ : SpikeTokenizer
        Vocabulary and token budgets.
    model_ : nfestimators.model.Neuroformer
        The trained torch module.
    history_ : skorch.History
        Per-epoch (and per-batch) record of every loss: ``train_loss``, ``valid_loss``,
        ``train_id``, ``train_dt``, ``train_contrastive``, ``train_regression``, ...
    n_epochs_ : int
        Epochs run (fewer than ``max_epochs`` after early stopping)."""
