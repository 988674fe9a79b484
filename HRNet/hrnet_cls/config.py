"""Experiment configs: upstream's yacs defaults (lib/config/default.py), its `update_config`,
and checks that turn a bad yaml into one clear line.

Configs are YAML only (.yaml / .yml), parsed with `yaml.safe_load`: yacs would also execute a
`.py` config (`--cfg x.py`), which is code, not a config, and is refused here.

The defaults are upstream's verbatim (they come from the pose-estimation code base: adam,
lr 1e-3, 140 epochs ...); every experiment yaml overrides them. `MODEL.EXTRA` is free-form in
upstream (`new_allowed`), so its stage blocks are checked here by hand.
"""
import argparse
import math
import os
from pathlib import Path

import yaml
from yacs.config import CfgNode as CN

from common.errors import UserError

EXPERIMENTS_DIR = Path(__file__).resolve().parents[1] / "experiments"
UPSTREAM_NAMES = ("w18_small_v1", "w18_small_v2", "w18", "w30", "w32", "w40", "w44", "w48", "w64")
DEMO_NAMES = ("demo_tiny",)  # not upstream: experiments/demo/, for tests and the demo

_C = CN()

_C.OUTPUT_DIR = ''
_C.LOG_DIR = ''
_C.DATA_DIR = ''
_C.GPUS = (0,)
_C.WORKERS = 4
_C.PRINT_FREQ = 20
_C.AUTO_RESUME = False
_C.PIN_MEMORY = True
_C.RANK = 0

_C.CUDNN = CN()
_C.CUDNN.BENCHMARK = True
_C.CUDNN.DETERMINISTIC = False
_C.CUDNN.ENABLED = True

_C.MODEL = CN()
_C.MODEL.NAME = 'cls_hrnet'
_C.MODEL.INIT_WEIGHTS = True
_C.MODEL.PRETRAINED = ''
_C.MODEL.NUM_JOINTS = 17
_C.MODEL.NUM_CLASSES = 1000
_C.MODEL.TAG_PER_JOINT = True
_C.MODEL.TARGET_TYPE = 'gaussian'
_C.MODEL.IMAGE_SIZE = [256, 256]  # width * height
_C.MODEL.HEATMAP_SIZE = [64, 64]
_C.MODEL.SIGMA = 2
_C.MODEL.EXTRA = CN(new_allowed=True)

_C.LOSS = CN()
_C.LOSS.USE_OHKM = False
_C.LOSS.TOPK = 8
_C.LOSS.USE_TARGET_WEIGHT = True
_C.LOSS.USE_DIFFERENT_JOINTS_WEIGHT = False

_C.DATASET = CN()
_C.DATASET.ROOT = ''
_C.DATASET.DATASET = 'mpii'
_C.DATASET.TRAIN_SET = 'train'
_C.DATASET.TEST_SET = 'valid'
_C.DATASET.DATA_FORMAT = 'jpg'
_C.DATASET.HYBRID_JOINTS_TYPE = ''
_C.DATASET.SELECT_DATA = False
_C.DATASET.FLIP = True
_C.DATASET.SCALE_FACTOR = 0.25
_C.DATASET.ROT_FACTOR = 30
_C.DATASET.PROB_HALF_BODY = 0.0
_C.DATASET.NUM_JOINTS_HALF_BODY = 8
_C.DATASET.COLOR_RGB = False

_C.TRAIN = CN()
_C.TRAIN.LR_FACTOR = 0.1
_C.TRAIN.LR_STEP = [90, 110]
_C.TRAIN.LR = 0.001
_C.TRAIN.OPTIMIZER = 'adam'
_C.TRAIN.MOMENTUM = 0.9
_C.TRAIN.WD = 0.0001
_C.TRAIN.NESTEROV = False
_C.TRAIN.GAMMA1 = 0.99
_C.TRAIN.GAMMA2 = 0.0
_C.TRAIN.BEGIN_EPOCH = 0
_C.TRAIN.END_EPOCH = 140
_C.TRAIN.RESUME = False
_C.TRAIN.CHECKPOINT = ''
_C.TRAIN.BATCH_SIZE_PER_GPU = 32
_C.TRAIN.SHUFFLE = True

_C.TEST = CN()
_C.TEST.BATCH_SIZE_PER_GPU = 32
_C.TEST.FLIP_TEST = False
_C.TEST.POST_PROCESS = False
_C.TEST.SHIFT_HEATMAP = False
_C.TEST.USE_GT_BBOX = False
_C.TEST.IMAGE_THRE = 0.1
_C.TEST.NMS_THRE = 0.6
_C.TEST.SOFT_NMS = False
_C.TEST.OKS_THRE = 0.5
_C.TEST.IN_VIS_THRE = 0.0
_C.TEST.COCO_BBOX_FILE = ''
_C.TEST.BBOX_THRE = 1.0
_C.TEST.MODEL_FILE = ''

_C.DEBUG = CN()
_C.DEBUG.DEBUG = False
_C.DEBUG.SAVE_BATCH_IMAGES_GT = False
_C.DEBUG.SAVE_BATCH_IMAGES_PRED = False
_C.DEBUG.SAVE_HEATMAPS_GT = False
_C.DEBUG.SAVE_HEATMAPS_PRED = False

# what a stage block of MODEL.EXTRA may hold (STAGE1 spells NUM_RANCHES in every upstream yaml)
_STAGE_KEYS = {"NUM_MODULES", "NUM_BRANCHES", "NUM_RANCHES", "BLOCK", "NUM_BLOCKS", "NUM_CHANNELS", "FUSE_METHOD"}
_EXTRA_KEYS = {"STAGE1", "STAGE2", "STAGE3", "STAGE4", "WITH_HEAD"}
BLOCKS = ("BASIC", "BOTTLENECK")
YAML_SUFFIXES = (".yaml", ".yml")


def get_defaults() -> CN:
    return _C.clone()


def available_configs() -> dict:
    """Short name -> yaml path: the nine upstream configs, then the demo one."""
    found = {n: EXPERIMENTS_DIR / f"cls_hrnet_{n}_sgd_lr5e-2_wd1e-4_bs32_x100.yaml" for n in UPSTREAM_NAMES}
    found.update({n: EXPERIMENTS_DIR / "demo" / f"cls_hrnet_{n}.yaml" for n in DEMO_NAMES})
    return found


def resolve_cfg_path(cfg: str) -> Path:
    """A yaml path (as upstream), or a short name such as `w18` / `w18_small_v2` / `demo_tiny`."""
    if not cfg:
        raise UserError("--cfg is required: a yaml file or one of " + ", ".join(available_configs()))
    known = available_configs()
    if cfg in known:
        return known[cfg]
    path = Path(cfg)
    if path.suffix.lower() not in YAML_SUFFIXES and (path.suffix or path.is_file()):
        raise UserError(f"--cfg {cfg}: configs are YAML files (.yaml or .yml), this is not one (a Python "
                        "config would run code, so none is ever loaded)")
    if path.is_file():
        return path
    if not path.suffix and (EXPERIMENTS_DIR / f"{cfg}.yaml").is_file():
        return EXPERIMENTS_DIR / f"{cfg}.yaml"
    raise UserError(f"--cfg {cfg}: no such config file (expected a yaml path or one of: {', '.join(known)})")


def cfg_name(cfg_path) -> str:
    """Upstream's run name: the yaml's base name up to the first dot."""
    return os.path.basename(os.fspath(cfg_path)).split('.')[0]


def _check_stage(name: str, stage, want_branches: int | None):
    where = f"MODEL.EXTRA.{name}"
    extra = sorted(set(stage) - _STAGE_KEYS)
    if extra:
        raise UserError(f"{where}: unknown key {extra[0]} (expected {', '.join(sorted(_STAGE_KEYS))})")
    required = ["BLOCK", "NUM_BLOCKS", "NUM_CHANNELS"] + ([] if name == "STAGE1" else ["NUM_MODULES", "NUM_BRANCHES"])
    for key in required:
        if key not in stage:
            raise UserError(f"{where}: missing key {key}")
    if stage["BLOCK"] not in BLOCKS:
        raise UserError(f"{where}.BLOCK: '{stage['BLOCK']}' is not one of {', '.join(BLOCKS)}")
    for key in ("NUM_BLOCKS", "NUM_CHANNELS"):
        value = stage[key]
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, int) and v > 0 for v in value):
            raise UserError(f"{where}.{key}: expected a list of positive integers, got {value!r}")
    if name == "STAGE1":
        return
    if not isinstance(stage["NUM_MODULES"], int) or stage["NUM_MODULES"] < 1:
        raise UserError(f"{where}.NUM_MODULES: expected a positive integer, got {stage['NUM_MODULES']!r}")
    n = stage["NUM_BRANCHES"]
    if n != want_branches:
        raise UserError(f"{where}.NUM_BRANCHES: expected {want_branches}, got {n!r}")
    for key in ("NUM_BLOCKS", "NUM_CHANNELS"):
        if len(stage[key]) != n:
            raise UserError(f"{where}.{key}: {len(stage[key])} entries for NUM_BRANCHES {n}")


def check_config(cfg: CN) -> None:
    """The model/recipe fields the code reads; one line naming the first bad one."""
    if cfg.MODEL.NAME != "cls_hrnet":
        raise UserError(f"MODEL.NAME: '{cfg.MODEL.NAME}' is not supported (expected cls_hrnet)")
    extra = cfg.MODEL.EXTRA
    unknown = sorted(set(extra) - _EXTRA_KEYS)
    if unknown:
        raise UserError(f"MODEL.EXTRA: unknown key {unknown[0]} (expected {', '.join(sorted(_EXTRA_KEYS))})")
    for i in range(1, 5):
        name = f"STAGE{i}"
        if name not in extra:
            raise UserError(f"MODEL.EXTRA: missing {name}")
        _check_stage(name, extra[name], None if i == 1 else i)
    size = list(cfg.MODEL.IMAGE_SIZE)
    if len(size) != 2 or any((not isinstance(s, int)) or s < 32 for s in size):
        raise UserError(f"MODEL.IMAGE_SIZE: expected [width, height] of integers >= 32, got {size}")
    if cfg.TRAIN.OPTIMIZER not in ("sgd", "adam"):
        raise UserError(f"TRAIN.OPTIMIZER: '{cfg.TRAIN.OPTIMIZER}' is not supported (expected sgd or adam)")
    if not isinstance(cfg.TRAIN.LR_STEP, (list, tuple, int)):
        raise UserError(f"TRAIN.LR_STEP: expected a list of epochs or one step size, got {cfg.TRAIN.LR_STEP!r}")
    if not _is_int(cfg.MODEL.NUM_CLASSES) or cfg.MODEL.NUM_CLASSES < 1:
        raise UserError(f"MODEL.NUM_CLASSES: expected a positive integer, got {cfg.MODEL.NUM_CLASSES!r}")
    _check_numbers(cfg)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_numbers(cfg: CN) -> None:
    """The numbers the training and evaluation code reads (the flags --bs, --lr, --workers,
    --train_epochs, --print_freq override some of them, but their defaults come from here)."""
    ints = {"TRAIN.BATCH_SIZE_PER_GPU": (cfg.TRAIN.BATCH_SIZE_PER_GPU, 1),
            "TEST.BATCH_SIZE_PER_GPU": (cfg.TEST.BATCH_SIZE_PER_GPU, 1),
            "TRAIN.BEGIN_EPOCH": (cfg.TRAIN.BEGIN_EPOCH, 0), "TRAIN.END_EPOCH": (cfg.TRAIN.END_EPOCH, 1),
            "WORKERS": (cfg.WORKERS, 0), "PRINT_FREQ": (cfg.PRINT_FREQ, 1)}
    for key, (value, lo) in ints.items():
        if not _is_int(value) or value < lo:
            raise UserError(f"{key}: expected an integer >= {lo}, got {value!r}")
    if cfg.TRAIN.BEGIN_EPOCH >= cfg.TRAIN.END_EPOCH:
        raise UserError(f"TRAIN.BEGIN_EPOCH {cfg.TRAIN.BEGIN_EPOCH} must be below TRAIN.END_EPOCH "
                        f"{cfg.TRAIN.END_EPOCH}")
    if not isinstance(cfg.GPUS, (list, tuple)) or not cfg.GPUS:
        raise UserError(f"GPUS: expected a non-empty list of device ids, got {cfg.GPUS!r}")
    if not _is_number(cfg.TRAIN.LR) or cfg.TRAIN.LR <= 0:
        raise UserError(f"TRAIN.LR: expected a number > 0, got {cfg.TRAIN.LR!r}")
    if not _is_number(cfg.TRAIN.WD) or cfg.TRAIN.WD < 0:
        raise UserError(f"TRAIN.WD: expected a number >= 0, got {cfg.TRAIN.WD!r}")
    if not _is_number(cfg.TRAIN.MOMENTUM) or not 0 <= cfg.TRAIN.MOMENTUM < 1:
        raise UserError(f"TRAIN.MOMENTUM: expected a number in [0, 1), got {cfg.TRAIN.MOMENTUM!r}")
    if not _is_number(cfg.TRAIN.LR_FACTOR) or not 0 < cfg.TRAIN.LR_FACTOR <= 1:
        raise UserError(f"TRAIN.LR_FACTOR: expected a number in (0, 1], got {cfg.TRAIN.LR_FACTOR!r}")
    steps = cfg.TRAIN.LR_STEP
    if _is_int(steps) and steps < 1 or isinstance(steps, (list, tuple)) and not all(
            _is_int(m) and m >= 0 for m in steps):
        raise UserError(f"TRAIN.LR_STEP: expected epochs >= 0 (a list) or a period >= 1, got {steps!r}")


def load_config(cfg_file, modelDir='', logDir='', dataDir='', testModel='') -> tuple[CN, Path]:
    """Upstream `update_config`: merge the yaml into the defaults, apply the path flags, freeze.

    Returns (frozen cfg, resolved yaml path).
    """
    path = resolve_cfg_path(cfg_file)
    cfg = get_defaults()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"config {path}: cannot read it as a text (YAML) file ({type(exc).__name__})") from None
    try:
        data = yaml.safe_load(text)  # plain data only: no tags that build objects
    except yaml.YAMLError as exc:
        raise UserError(f"config {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"config {path}: expected a YAML mapping of config keys (GPUS, MODEL, TRAIN, ...), "
                        f"got {type(data).__name__}")
    try:
        cfg.merge_from_other_cfg(CN(data))
    except KeyError as exc:  # yacs: "Non-existent config key: MODEL.FOO"
        msg = str(exc.args[0]) if exc.args else str(exc)
        key = msg.split(":", 1)[-1].strip()
        raise UserError(f"config {path}: unknown key {key} (not a key of upstream's lib/config/default.py)") from None
    except ValueError as exc:  # yacs: type mismatch
        raise UserError(f"config {path}: {str(exc).splitlines()[0]}") from None
    except AssertionError as exc:
        what = str(exc).splitlines()[0] if str(exc) else "a value of an unsupported type"
        raise UserError(f"config {path}: {what}") from None
    try:
        check_config(cfg)
    except UserError as exc:
        raise UserError(f"config {path}: {exc}") from None
    if modelDir:
        cfg.OUTPUT_DIR = modelDir
    if logDir:
        cfg.LOG_DIR = logDir
    if dataDir:
        cfg.DATA_DIR = dataDir
    if testModel:
        cfg.TEST.MODEL_FILE = testModel
    cfg.DATASET.ROOT = os.path.join(cfg.DATA_DIR, cfg.DATASET.DATASET, 'images')
    cfg.freeze()
    return cfg, path


def output_dir(cfg: CN, cfg_path) -> Path:
    """Upstream's final_output_dir: OUTPUT_DIR/<dataset>/<cfg name>."""
    return Path(cfg.OUTPUT_DIR or ".") / cfg.DATASET.DATASET / cfg_name(cfg_path)


def default_weights(argv, model_dir: str) -> str:
    """The file the eval scripts evaluate when no --pth_path is given: final_state.pth.tar of the
    full training run that used the same --cfg and --modelDir (the script's default modelDir,
    unless the arguments name one). Never fails: an unknown --cfg still gives a path to report.

        python3 -c '...default_weights(sys.argv[2:], sys.argv[1])' test/output/0/full_1p --cfg=w18
    """
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--cfg", default=str(EXPERIMENTS_DIR / "cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml"))
    p.add_argument("--modelDir", default=model_dir)
    a, _ = p.parse_known_args(argv)
    try:
        path = resolve_cfg_path(a.cfg)
    except UserError:
        path = Path(a.cfg)
    return os.path.abspath(Path(a.modelDir or model_dir) / "imagenet" / cfg_name(path) / "final_state.pth.tar")
