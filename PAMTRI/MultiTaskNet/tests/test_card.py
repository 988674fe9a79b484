"""The model card's commands (MindSpore-format card, seeds/002), typed as written, with the demo data and toy sizes
appended: each runs to its end or ends with one line that says what to do. README "Card commands" lists them."""
import re
from pathlib import Path

import pytest
import torch

from common.errors import main_guard

from .conftest import MTN_DIR, PAMTRI_DIR, TINY, load_entry, run_card
from .test_bad_input import small_veri, tiny_features


def one_line(r, *needles):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stdout[-2000:] + r.stderr[-2000:]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def run_main(capsys, script, argv):
    """main() of an entry script in this process: (exit status, stdout, stderr lines)."""
    try:
        main_guard(load_entry(script).main)(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err.strip().splitlines()


def test_card_train_command_builds_the_cards_model(tmp_path, capsys):
    """`python train.py --distribute False --pre_ckpt_path path/pretain_ckpt --root path/dataset --heatmapaware
    --segmentaware`: the keypoint-aware multitask model of the card (colour/type block printed), from torchvision
    ImageNet weights in the layout of densenet121-a639ec97.pth (old `norm.1` names) loaded as data."""
    root = small_veri(tmp_path / "data")
    pre = tiny_features(tmp_path / "densenet_tiny_imagenet.pth")
    card = ["--distribute", "False", "--pre_ckpt_path", str(pre), "--root", str(root), "--heatmapaware",
            "--segmentaware"]
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / ".tmp_999999999_checkpoint_ep1.pth.tar").write_bytes(b"half")  # a write that crashed
    # + a bare --resume with nothing saved yet: starts from scratch and says so
    code, out, err = run_main(capsys, "train.py", [*card, *TINY, "--workers=0", "--batch_size=8", "--max-epoch=1",
                                                   f"--save-dir={tmp_path / 'ckpt'}", "--resume"])
    assert code == 0, err
    assert f"--resume: nothing to resume from yet ({tmp_path / 'ckpt' / 'checkpoint_ep*.pth.tar'} does not exist): " \
           "starting from scratch" in out
    assert not list((tmp_path / "ckpt").glob(".tmp_*")) and "removed 1 stale checkpoint temp file" in err[0]
    assert f"Loaded ImageNet weights from {pre}" in out
    assert "Compute attribute classification accuracy" in out
    assert re.search(r"^Color classification accuracy: [\d.]+%$", out, re.M)
    assert re.search(r"^Type classification accuracy: [\d.]+%$", out, re.M)
    assert re.search(r"^epoch: 1 step: 1, loss is [\d.]+$", out, re.M)  # the card's `grep "loss is "`
    ck = torch.load(tmp_path / "ckpt" / "checkpoint_ep1.pth.tar", map_location="cpu", weights_only=True)
    assert ck["config"]["keyptaware"] and ck["config"]["multitask"] and ck["config"]["in_channels"] == 52
    sd = ck["state_dict"]
    assert sd["fc_vid.weight"].shape[1] == sd["base.norm5.weight"].shape[0] + 108  # the keypoints reach the heads


def test_nvidia_variants_stay_reachable_with_explicit_flags():
    parse = load_entry("train.py").get_args_parser().parse_args
    assert (parse([]).keyptaware, parse([]).multitask) == (True, True)  # the card's model
    a = parse(["--keyptaware", "False", "--multitask"])  # NVIDIA / Ascend port recipe (the test/*.sh scripts)
    assert (a.keyptaware, a.multitask) == (False, True)
    a = parse(["--keyptaware=False", "--multitask=False"])  # NVIDIA's plain re-id model
    assert (a.keyptaware, a.multitask) == (False, False)


@pytest.mark.e2e
def test_card_commands_that_end_with_one_line(tmp_path, capsys):
    root = small_veri(tmp_path / "data")
    mindspore = tmp_path / "MultiTask_pretrained.ckpt"
    mindspore.write_bytes(b"\x0a\x12MindSpore checkpoint protobuf")
    # train.py / run_single_train_*.sh with the card's MindSpore .ckpt as pretrained weights
    code, _, err = run_main(capsys, "train.py", ["--distribute", "False", "--pre_ckpt_path", str(mindspore), "--root",
                                                 str(root), "--heatmapaware", *TINY, "--workers=0", "--batch_size=8",
                                                 f"--save-dir={tmp_path / 'ckpt'}"])
    assert code == 1 and len(err) == 1 and "looks like a MindSpore .ckpt" in err[0] and "densenet121-a639ec97.pth" \
        in err[0]
    # --device_target GPU on a machine without one
    if not torch.cuda.is_available():
        code, _, err = run_main(capsys, "eval.py", ["--ckpt_path", str(mindspore), "--device_target", "GPU", "--root",
                                                    str(root), "--device_id", "0"])
        assert code == 1 and len(err) == 1 and "use --device_target CPU" in err[0], err
    # eval.py --heatmapaware --segmentaware on a checkpoint trained with heatmaps only
    from multitasknet.model import MultiTaskNet

    src = MultiTaskNet(2, 2, 2, in_channels=39, keyptaware=True, multitask=True, arch="densenet_tiny")
    torch.save({"state_dict": src.state_dict()}, tmp_path / "h.pth.tar")
    code, _, err = run_main(capsys, "eval.py", ["--ckpt_path", str(tmp_path / "h.pth.tar"), "--root", str(root),
                                                "--device_id", "0", "--heatmapaware", "--segmentaware"])
    assert code == 1 and len(err) == 1 and "--segmentaware True does not match" in err[0] and "drop the flag" in err[0]
    # export.py --file_format MINDIR (the card's format)
    code, _, err = run_main(capsys, "export.py", ["--root", str(root), "--ckpt_path", str(tmp_path / "h.pth.tar"),
                                                  "--file_format", "MINDIR"])
    assert code == 1 and len(err) == 1 and "MindSpore format" in err[0] and "exports ONNX" in err[0]
    # the shell wrappers: missing weights, a wrong h|s letter, the 310 inference, a missing rank table
    r = run_card("run_single_train_ascend.sh", root, tmp_path / "none.ckpt", "1", "s", cwd=tmp_path)
    one_line(r, "pretrained weights not found", "densenet121-a639ec97.pth")
    r = run_card("run_distribute_train_gpu.sh", root, "none", "8", "x", cwd=tmp_path)
    one_line(r, "HEATMAP_SEGMENT must be h (heatmaps) or s (segments), got 'x'")
    r = run_card("run_distribute_train_ascend.sh", root, "none", tmp_path / "rank_table_8pcs.json", "h", cwd=tmp_path)
    one_line(r, "rank table not found or unreadable", "rank_table_8pcs.json")
    r = run_card("run_infer_310.sh", tmp_path / "MultiTask_Mindir.mindir", root, "y", "Ascend", "0", "y", "n",
                 cwd=tmp_path)
    one_line(r, "export.py", "atc", "README")
    r = run_card("run_eval_gpu.sh", root, cwd=tmp_path)
    one_line(r, "usage: bash scripts/run_eval_gpu.sh DATASET_PATH CKPT_PATH DEVICE_ID h|s")
    # PAMTRI/scripts/ (their earlier place) forward to the same body
    r = run_card(str(PAMTRI_DIR / "scripts" / "run_single_train_gpu.sh"), root, cwd=tmp_path)
    one_line(r, "usage: bash scripts/run_single_train_gpu.sh DATA_PATH PRETRAINED_PATH DEVICE_ID h|s")
    assert not list(tmp_path.glob("*.log"))  # nothing ran


def test_pthtockpt_checks_the_file_and_says_no_conversion_is_needed(tmp_path, capsys):
    """`python src/utils/pthtockpt.py --pth_path /path/densenet121-a639ec97.pth` runs to its end."""
    pre = tiny_features(tmp_path / "densenet_tiny_imagenet.pth")
    code, out, err = run_main(capsys, "src/utils/pthtockpt.py", ["--pth_path", str(pre), "--arch", "densenet_tiny"])
    assert code == 0 and "No conversion is needed" in out and "--pre_ckpt_path" in out, err


@pytest.mark.e2e
def test_rank_table_devices(tmp_path):
    """hccl rank table (hccl_tools.py format) -> the device list, in rank order; anything else is one line."""
    import json
    import subprocess
    import sys

    helper = MTN_DIR / "scripts" / "rank_table.py"

    def table(servers):
        path = tmp_path / "rank_table.json"
        path.write_text(json.dumps({"version": "1.0", "server_count": str(len(servers)), "status": "completed",
                                    "server_list": servers}))
        return path

    def run(path):
        return subprocess.run([sys.executable, str(helper), str(path)], capture_output=True, text=True)

    devs = [{"device_id": "6", "device_ip": "192.98.92.106", "rank_id": "1"},
            {"device_id": "4", "device_ip": "192.98.92.104", "rank_id": "0"}]
    r = run(table([{"server_id": "10.155.111.140", "device": devs, "host_nic_ip": "reserve"}]))
    assert r.returncode == 0 and r.stdout.strip() == "4,6"
    r = run(table([{"server_id": "a", "device": devs}, {"server_id": "b", "device": devs}]))
    one_line(r, "lists 2 servers", "--nnodes")
    Path(tmp_path / "bad.json").write_text("{not json")
    one_line(run(tmp_path / "bad.json"), "is not JSON")


@pytest.mark.parametrize("folder", ["MultiTaskNet", "PoseEstNet", "."])
def test_requirements_txt_is_the_tested_line(folder):
    """requirements.txt (the card's `pip install -r requirements.txt`, in PAMTRI/ and in each half) lists the same
    pins as 2.14.1_requirements.txt."""
    def pins(path):
        out = []
        for line in Path(path).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("-r "):
                out += pins(Path(path).parent / line[3:].strip())
            elif line:
                out.append(line)
        return sorted(out)

    assert pins(PAMTRI_DIR / folder / "requirements.txt") == pins(PAMTRI_DIR / "2.14.1_requirements.txt")
    assert len(pins(PAMTRI_DIR / "2.14.1_requirements.txt")) == 12  # torch ... PyYAML, tqdm, matplotlib


@pytest.mark.e2e
def test_card_distribute_ascend_launches_one_process_per_rank_table_device(veri_root, tmp_path):
    """`bash scripts/run_distribute_train_ascend.sh DATA PRETRAINED RANK_TABLE_FILE h`: the rank table lists two
    devices, torchrun starts two processes (on the CPU here), rank 0 logs to ./device0/train0.log as the card says,
    checkpoints go to ./ckpt/. The card's other spelling (DATASET_PATH given twice) reads the same arguments."""
    import json

    table = tmp_path / "rank_table_2pcs.json"
    table.write_text(json.dumps({"version": "1.0", "server_count": "1", "status": "completed", "server_list": [
        {"server_id": "127.0.0.1", "host_nic_ip": "reserve", "device": [
            {"device_id": "3", "device_ip": "192.98.92.103", "rank_id": "0"},
            {"device_id": "5", "device_ip": "192.98.92.105", "rank_id": "1"}]}]}))
    r = run_card("run_distribute_train_ascend.sh", veri_root, "none", table, "h", "--train-batch=8", "--max_steps=2",
                 "--eval-step=0", *TINY, "--workers=0", cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = (tmp_path / "device0" / "train0.log").read_text()
    assert "processes: 2" in log and "Batch: 16 images per step = 2 process(es) x 8 (2 ids x 4)" in log
    assert re.search(r"^epoch: 1 step: 2, loss is [\d.]+$", log, re.M)
    assert (tmp_path / "ckpt" / "checkpoint_ep1_step2.pth.tar").is_file()
    (tmp_path / "bad.json").write_text("{")
    r = run_card("run_distribute_train_ascend.sh", veri_root, "none", veri_root, tmp_path / "bad.json", "h",
                 cwd=tmp_path)
    one_line(r, f"rank table {tmp_path / 'bad.json'} is not JSON")
