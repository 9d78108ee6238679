"""Optional field libraries (pynwb, spikeinterface, pynapple): imported only when used."""

from __future__ import annotations

import importlib


def import_extra(module, extra):
    """Import ``module``, or raise an ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"this needs the optional dependency {module.split('.')[0]!r}, which is not "
            f"installed; install the extra: pip install 'nfestimators[{extra}]'") from exc
