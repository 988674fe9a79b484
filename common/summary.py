"""Read a training/eval log and write the CI summary file and the final lines.

Usage (the test/*.sh scripts call it through common/scripts/testlib.sh):

    python common/summary.py --log LOG --out_dir DIR --network NAME --rank_size N \
        --batch_size B --mode acc|perf|eval --e2e SECONDS --rc RC \
        --fps_pattern REGEX [--fps_reduce mean|last] [--fps_tail N] --acc_pattern REGEX \
        [--loss_pattern REGEX] [--compile_pattern REGEX] [--global_batch_size G]

Each pattern is a Python regex with one group that captures a number. FPS is the mean
of all matches (of the last N with --fps_tail, or the last one), accuracy and loss are the
last match, kept as the log wrote them (`0.1150` stays `0.1150`); all loss matches go to
`train_<CaseName>_loss.txt`. A value with no match is written empty, never guessed.

A failed run (--rc non-zero) writes nothing: the summary and loss file of the last good
run of the same CaseName stay byte-identical. Files are replaced atomically.
"""
import argparse
import os
import platform
import re
import sys

FINAL_HEADER = "------------------ Final result ------------------"


def case_name(network: str, batch_size, rank_size, mode: str) -> str:
    return f"{network}_bs{batch_size}_{rank_size}p_{mode}"


def find_numbers(text: str, pattern: str | None) -> list[str]:
    """The text of every match's number (group 1), as the log wrote it."""
    if not pattern:
        return []
    out = []
    for m in re.finditer(pattern, text, flags=re.MULTILINE):
        try:
            float(m.group(1))
        except (TypeError, ValueError, IndexError):
            continue
        out.append(m.group(1))
    return out


def fmt(value, digits=None) -> str:
    if value is None:
        return ""
    if digits is not None:
        return f"{value:.{digits}f}"
    return f"{value:g}" if isinstance(value, float) and abs(value) < 1e6 else str(value)


def summarize(text: str, *, network: str, rank_size: int, batch_size: int, mode: str,
              e2e: float | None, fps_pattern=None, fps_reduce="mean", fps_tail=0, fps_scale=1.0,
              acc_pattern=None, loss_pattern=None, compile_pattern=None, device_type=None,
              global_batch_size=None):
    """Return (ordered list of (key, value-string), list of loss value strings)."""
    fps_values = find_numbers(text, fps_pattern)
    if fps_tail:
        fps_values = fps_values[-fps_tail:]
    fps_text = None
    if fps_values and fps_reduce == "last" and fps_scale == 1.0:
        fps_text = fps_values[-1]
    elif fps_values:
        picked = [float(fps_values[-1])] if fps_reduce == "last" else [float(v) for v in fps_values]
        fps_text = fmt(fps_scale * sum(picked) / len(picked), 3)
    fps = float(fps_text) if fps_text is not None else None
    accs = find_numbers(text, acc_pattern)
    losses = find_numbers(text, loss_pattern)
    compile_times = find_numbers(text, compile_pattern)
    name = case_name(network, batch_size, rank_size, mode)
    rows = [
        ("Network", network),
        ("RankSize", str(rank_size)),
        ("BatchSize", str(batch_size)),
        ("GlobalBatchSize", "" if global_batch_size is None else str(global_batch_size)),
        ("DeviceType", device_type or platform.machine()),
        ("CaseName", name),
        ("ActualFPS", fps_text or ""),
        ("TrainingTime", fmt(batch_size * 1000.0 / fps, 2) if fps else ""),
    ]
    if mode == "eval":
        rows += [("EvalAccuracy", accs[-1] if accs else ""), ("E2EEvalTime", fmt(e2e, 0) if e2e is not None else "")]
    else:
        rows += [("ActualLoss", losses[-1] if losses else ""),
                 ("E2ETrainingTime", fmt(e2e, 0) if e2e is not None else ""),
                 ("TrainAccuracy", accs[-1] if accs else "")]
        if compile_pattern:
            rows.append(("CompileTime", fmt(sum(float(v) for v in compile_times[:2]), 4) if compile_times else ""))
    return rows, losses


def write_atomic(path: str, text: str) -> None:
    """Replace `path` in one step, so a reader never sees half a summary."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


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
    p.add_argument("--fps_tail", type=int, default=0, help="average only the last N FPS matches (0: all)")
    p.add_argument("--fps_scale", type=float, default=1.0, help="multiply FPS (per-device fps lines in 8p)")
    p.add_argument("--global_batch_size", type=int, default=None, help="images per optimizer step, all ranks")
    p.add_argument("--acc_pattern")
    p.add_argument("--loss_pattern")
    p.add_argument("--compile_pattern")
    p.add_argument("--device_type", default=None)
    a = p.parse_args(argv)
    if a.rc != 0:
        print(f"[Error] the run failed (exit status {a.rc}): no summary written; the files of earlier runs in "
              f"{a.out_dir} are unchanged", file=sys.stderr)
        return a.rc
    try:
        with open(a.log, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as exc:
        print(f"Error: cannot read log {a.log}: {exc.strerror}", file=sys.stderr)
        return a.rc or 1
    rows, losses = summarize(text, network=a.network, rank_size=a.rank_size, batch_size=a.batch_size,
                             mode=a.mode, e2e=a.e2e, fps_pattern=a.fps_pattern, fps_reduce=a.fps_reduce,
                             fps_tail=a.fps_tail, fps_scale=a.fps_scale, acc_pattern=a.acc_pattern,
                             loss_pattern=a.loss_pattern, compile_pattern=a.compile_pattern,
                             device_type=a.device_type, global_batch_size=a.global_batch_size)
    name = dict(rows)["CaseName"]
    os.makedirs(a.out_dir, exist_ok=True)
    if a.mode != "eval":
        write_atomic(os.path.join(a.out_dir, f"train_{name}_loss.txt"), "".join(f"{v}\n" for v in losses))
    write_atomic(os.path.join(a.out_dir, f"{name}.log"), "".join(f"{k} = {v}\n" for k, v in rows))
    for line in final_lines(rows, a.mode):
        print(line)
    return a.rc


if __name__ == "__main__":
    sys.exit(main())
