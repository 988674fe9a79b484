"""Draw the curves of one or more training runs from their metrics files (PNG, no display).

    python tools/plot_runs.py RUN [RUN ...] --out DIR
    python tools/plot_runs.py lr0.01=DeepMar/exp/a lr0.001=DeepMar/exp/b --out curves/

RUN is a `metrics.jsonl` file or a folder holding one (searched below it), optionally as
NAME=PATH; without a name the run is named after its folder. Several runs are overlaid in
every picture, so 1p vs 8p, fp32 vs AMP or two learning rates compare side by side:

    loss.png        training loss(es) per step (per epoch where a model logs no steps)
    lr.png          learning rate per step
    metrics.png     every evaluation metric per epoch, one panel per metric
    throughput.png  images/s per step and per epoch
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import UserError, main_guard
from common.metrics_file import FILE_NAME, read_rows


def find_runs(specs) -> list[tuple[str, Path]]:
    runs = []
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        p = Path(path)
        if p.is_dir():
            found = sorted(p.rglob(FILE_NAME))
            if not found:
                raise UserError(f"no {FILE_NAME} under {p}")
            files = found
        elif p.is_file():
            files = [p]
        else:
            raise UserError(f"run not found: {p}")
        for f in files:
            label = name or f.parent.name
            if name and len(files) > 1:
                label = f"{name}:{f.parent.name}"
            runs.append((label, f))
    return runs


def _series(rows, kind, value):
    xs, ys = [], []
    for r in rows:
        if r["kind"] != kind:
            continue
        v = value(r)
        if v is not None:
            xs.append(r["step"] if kind == "step" else r["epoch"])
            ys.append(v)
    return xs, ys


def plot(runs, out_dir) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = [(label, read_rows(path)) for label, path in runs]
    written = []

    def save(fig, name):
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    # losses: per step where steps are logged, else per epoch
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, rows in data:
        kind = "step" if any(r["kind"] == "step" and r["losses"] for r in rows) else "epoch"
        names = sorted({k for r in rows if r["kind"] == kind for k in r["losses"]})
        for n in names:
            xs, ys = _series(rows, kind, lambda r, n=n: r["losses"].get(n))
            ax.plot(xs, ys, label=f"{label} {n}" + (" (per epoch)" if kind == "epoch" else ""))
    ax.set(xlabel="step", ylabel="loss", title="training loss")
    ax.legend(fontsize="small")
    save(fig, "loss.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    for label, rows in data:
        kind = "step" if any(r["kind"] == "step" and r["lr"] is not None for r in rows) else "epoch"
        xs, ys = _series(rows, kind, lambda r: r["lr"])
        xs = xs if kind == "step" else [r["step"] for r in rows if r["kind"] == "epoch" and r["lr"] is not None]
        ax.plot(xs, ys, label=label, drawstyle="steps-post")
    ax.set(xlabel="step", ylabel="learning rate", title="learning rate")
    ax.legend(fontsize="small")
    save(fig, "lr.png")

    names = sorted({k for _, rows in data for r in rows if r["kind"] == "epoch" for k in r["metrics"]})
    cols = min(3, max(1, len(names)))
    nrows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
    for i, n in enumerate(names):
        ax = axes[i // cols][i % cols]
        for label, rows in data:
            xs, ys = _series(rows, "epoch", lambda r, n=n: r["metrics"].get(n))
            if xs:
                ax.plot(xs, ys, marker="o", label=label)
        ax.set(xlabel="epoch", title=n)
        ax.legend(fontsize="small")
    for j in range(len(names), nrows * cols):
        axes[j // cols][j % cols].axis("off")
    if not names:
        axes[0][0].set_title("no evaluation metrics in these runs")
    save(fig, "metrics.png")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for label, rows in data:
        xs, ys = _series(rows, "step", lambda r: r["images_per_sec"])
        if xs:
            ax1.plot(xs, ys, label=label)
        xs, ys = _series(rows, "epoch", lambda r: r["images_per_sec"])
        if xs:
            ax2.plot(xs, ys, marker="o", label=label)
    ax1.set(xlabel="step", ylabel="images/s", title="throughput per logged step")
    ax2.set(xlabel="epoch", ylabel="images/s", title="throughput per epoch")
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    save(fig, "throughput.png")
    return written


@main_guard
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="metrics.jsonl files or run folders, optionally NAME=PATH")
    p.add_argument("--out", required=True, help="folder for the PNG files")
    a = p.parse_args(argv)
    runs = find_runs(a.runs)
    for path in plot(runs, a.out):
        print(f"wrote {os.fspath(path)}")


if __name__ == "__main__":
    main()
