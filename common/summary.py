"""Read a training/eval log and write the CI summary file and the final lines.

Usage (the test/*.sh scripts call it through common/scripts/testlib.sh):

    python common/summary.py --log LOG --out_dir DIR --network NAME --rank_size N \
        --batch_size B --mode acc|perf|eval --e2e SECONDS --rc RC \
        --fps_pattern REGEX [--fps_reduce mean|last] --acc_pattern REGEX \
        [--loss_pattern REGEX] [--compile_pattern REGEX]

Each pattern is a Python regex with one group that captures a number. FPS is the mean
(or last) of all matches, accuracy and loss are the last match; all loss matches go to
`train_<CaseName>_loss.txt`. A value with no match is written empty, never guessed.
"""
import argparse
import os
import platform
import re
import sys

FINAL_HEADER = "------------------ Final result ------------------"


def case_name(network: str, batch_size, rank_size, mode: str) -> str:
    return f"{network}_bs{batch_size}_{rank_size}p_{mode}"


def find_numbers(text: str, pattern: str | None) -> list[float]:
    if not pattern:
        return []
    out = []
    for m in re.finditer(pattern, text, flags=re.MULTILINE):
        try:
            value = float(m.group(1))
        except (TypeError, ValueError, IndexError):
            continue
        out.append(value)
    return out


def fmt(value, digits=None) -> str:
    if value is None:
        return ""
    if digits is not None:
        return f"{value:.{digits}f}"
    return f"{value:g}" if isinstance(value, float) and abs(value) < 1e6 else str(value)


def summarize(text: str, *, network: str, rank_size: int, batch_size: int, mode: str,
              e2e: float | None, fps_pattern=None, fps_reduce="mean", acc_pattern=None,
              loss_pattern=None, compile_pattern=None, device_type=None):
    """Return (ordered list of (key, value-string), list of loss values)."""
    fps_values = find_numbers(text, fps_pattern)
    if fps_values:
        fps = fps_values[-1] if fps_reduce == "last" else sum(fps_values) / len(fps_values)
    else:
        fps = None
    accs = find_numbers(text, acc_pattern)
    acc = accs[-1] if accs else None
    losses = find_numbers(text, loss_pattern)
    loss = losses[-1] if losses else None
    compile_times = find_numbers(text, compile_pattern)
    name = case_name(network, batch_size, rank_size, mode)
    rows = [
        ("Network", network),
        ("RankSize", str(rank_size)),
        ("BatchSize", str(batch_size)),
        ("DeviceType", device_type or platform.machine()),
        ("CaseName", name),
        ("ActualFPS", fmt(fps, 3) if fps is not None else ""),
        ("TrainingTime", fmt(batch_size * 1000.0 / fps, 2) if fps else ""),
    ]
    if mode == "eval":
        rows += [("EvalAccuracy", fmt(acc)), ("E2EEvalTime", fmt(e2e, 0) if e2e is not None else "")]
    else:
        rows += [("ActualLoss", fmt(loss)), ("E2ETrainingTime", fmt(e2e, 0) if e2e is not None else ""),
                 ("TrainAccuracy", fmt(acc))]
        if compile_pattern:
            rows.append(("CompileTime", fmt(sum(compile_times[:2]), 4) if compile_times else ""))
    return rows, losses


def final_lines(rows, mode: str) -> list[str]:
    d = dict(rows)
    acc_key = "EvalAccuracy" if mode == "eval" else "TrainAccuracy"
    acc_label = "Final Eval Accuracy" if mode == "eval" else "Final Train Accuracy"
    e2e = d.get("E2EEvalTime" if mode == "eval" else "E2ETrainingTime", "")
    return [FINAL_HEADER,
            f"Final Performance images/sec : {d['ActualFPS']}",
            f"{acc_label} : {d[acc_key]}",
            f"E2E Training Duration sec : {e2e}"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--log", required=True)
    p.add_argument("--out_dir", required=True)
    p.add_argument("--network", required=True)
    p.add_argument("--rank_size", type=int, required=True)
    p.add_argument("--batch_size", type=int, required=True)
    p.add_argument("--mode", choices=("acc", "perf", "eval"), required=True)
    p.add_argument("--e2e", type=float, default=None)
    p.add_argument("--rc", type=int, default=0, help="exit status of the run; non-zero is passed on")
    p.add_argument("--fps_pattern")
    p.add_argument("--fps_reduce", choices=("mean", "last"), default="mean")
    p.add_argument("--acc_pattern")
    p.add_argument("--loss_pattern")
    p.add_argument("--compile_pattern")
    p.add_argument("--device_type", default=None)
    a = p.parse_args(argv)
    try:
        with open(a.log, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as exc:
        print(f"Error: cannot read log {a.log}: {exc.strerror}", file=sys.stderr)
        return a.rc or 1
    rows, losses = summarize(text, network=a.network, rank_size=a.rank_size, batch_size=a.batch_size,
                             mode=a.mode, e2e=a.e2e, fps_pattern=a.fps_pattern, fps_reduce=a.fps_reduce,
                             acc_pattern=a.acc_pattern, loss_pattern=a.loss_pattern,
                             compile_pattern=a.compile_pattern, device_type=a.device_type)
    name = dict(rows)["CaseName"]
    os.makedirs(a.out_dir, exist_ok=True)
    if a.mode != "eval":
        with open(os.path.join(a.out_dir, f"train_{name}_loss.txt"), "w") as f:
            f.writelines(f"{v:g}\n" for v in losses)
    with open(os.path.join(a.out_dir, f"{name}.log"), "w") as f:
        f.writelines(f"{k} = {v}\n" for k, v in rows)
    for line in final_lines(rows, a.mode):
        print(line)
    return a.rc


if __name__ == "__main__":
    sys.exit(main())
