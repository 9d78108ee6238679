"""
Few labels: pretrain on unlabelled spikes, finetune on a handful of labels
=========================================================================

Recordings are long; labelled windows (a behaviour tracked, a stimulus annotated) are
often few. :class:`~nfestimators.NeuroformerPretrainer` learns from the spikes alone; its
weights are the starting point of a :class:`~nfestimators.NeuroformerRegressor` or
:class:`~nfestimators.NeuroformerClassifier` trained on the few labels::

    pre = NeuroformerPretrainer(preset="small").fit(X_train)           # no labels
    clf = NeuroformerClassifier(pretrained=FrozenEstimator(pre))       # FrozenEstimator:
    clf.fit(X_train[labelled], y[labelled])                            # clone-safe weights

This example runs the label-efficiency benchmark (``benchmarks/label_efficiency.py``, which
documents the protocol): for 1, 5, 10, 25 and 100 % of the training rows (stratified by
class, several random draws), finetuned vs. the same estimator trained from scratch with
the same budget vs. a ridge / logistic regression on binned counts, all scored on the same
held-out rows. It prints the table (mean ± sd over draws) and saves a plot of the test score
against the label fraction (log x axis). With ``NFE_EXAMPLE_SMALL=1`` (the docs build) it
runs at CI size (``--small``), where the figures mean nothing.

    python examples/few_labels.py --small                        # a minute, CI size
    python examples/few_labels.py --dataset auditory --data ../shared/data/auditory_cortex/D_E_III.csv
    python examples/few_labels.py --results out/label_efficiency  # plot a finished run
"""

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import label_efficiency as bench  # noqa: E402

STYLE = {"finetune": ("C0", "o", "pretrained + finetuned"),
         "probe": ("C2", "^", "pretrained, linear probe"),
         "scratch": ("C3", "s", "from scratch"),
         "linear": ("0.4", "x", "ridge / logistic on counts")}


def plot_table(table, path):
    """Score vs. label fraction (log x), one panel per task; error bars: sd over draws."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(table.groupby(["dataset", "task", "metric"], sort=False))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.6 * len(groups), 3.6), squeeze=False)
    for ax, ((dataset, task, metric), part) in zip(axes[0], groups):
        for method, rows in part.groupby("method", sort=False):
            color, marker, label = STYLE.get(method, (None, "o", method))
            rows = rows.sort_values("fraction")
            ax.errorbar(100 * rows["fraction"], rows["mean"], yerr=rows["std"], color=color,
                        marker=marker, capsize=3, label=label)
        ax.set_xscale("log")
        ticks = sorted(100 * part["fraction"].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("labelled training rows (%)")
        ax.set_ylabel("test R² x 100" if metric.startswith("R2") else "test accuracy (%)")
        ax.set_title(f"{dataset}: {task}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--results", default=None,
                       help="folder of a finished benchmark run: plot its tables, train nothing")
    extra.add_argument("--figure", default=None,
                       help="plot path (default: few_labels_<dataset>.png here, or "
                            "<results>/few_labels.png)")
    known, rest = extra.parse_known_args(sys.argv[1:] if argv is None else argv)
    if os.environ.get("NFE_EXAMPLE_SMALL") == "1" and "--small" not in rest:
        rest.append("--small")  # the docs build runs every example at CI size
    args = bench.parse_args(rest, description=__doc__.strip().split("\n", 1)[0])
    if known.results:
        tables = sorted(Path(known.results).glob("table_*.csv"))
        if not tables:
            raise SystemExit(f"no table_*.csv in {known.results}")
        table = pd.concat([pd.read_csv(t) for t in tables], ignore_index=True)
        default_figure = Path(known.results) / "few_labels.png"
    else:
        table = bench.summarize(bench.run(args))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / f"table_{args.dataset}.csv", index=False)
        default_figure = Path(f"few_labels_{args.dataset}.png")
    print(bench.markdown(table))
    figure = plot_table(table, known.figure or default_figure)
    print(f"saved {figure}")


if __name__ == "__main__":
    main()
