"""Config loading: upstream defaults and yaml values, short names, and one-line errors."""
import pytest
from hrnet_cls import config

from common.errors import UserError


def test_defaults_are_upstreams():
    c = config.get_defaults()
    assert (c.TRAIN.OPTIMIZER, c.TRAIN.LR, c.TRAIN.END_EPOCH, c.TRAIN.LR_STEP) == ("adam", 0.001, 140, [90, 110])
    assert c.MODEL.NUM_CLASSES == 1000 and c.PRINT_FREQ == 20 and c.DATASET.TEST_SET == "valid"


def test_w18_yaml_values_and_paths():
    cfg, path = config.load_config("w18", modelDir="out", dataDir="data", testModel="m.pth")
    assert path.name == "cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml"
    t = cfg.TRAIN
    assert (t.OPTIMIZER, t.LR, t.WD, t.MOMENTUM, t.NESTEROV) == ("sgd", 0.05, 0.0001, 0.9, True)
    assert (t.LR_STEP, t.LR_FACTOR, t.BEGIN_EPOCH, t.END_EPOCH, t.BATCH_SIZE_PER_GPU) == ([30, 60, 90], 0.1, 0, 100, 32)
    assert cfg.GPUS == (0, 1, 2, 3) and cfg.MODEL.IMAGE_SIZE == [224, 224] and cfg.PRINT_FREQ == 1000
    assert cfg.MODEL.EXTRA.STAGE4.NUM_CHANNELS == [18, 36, 72, 144]
    assert cfg.MODEL.EXTRA.STAGE1.NUM_RANCHES == 1  # upstream's spelling, kept
    assert cfg.OUTPUT_DIR == "out" and cfg.TEST.MODEL_FILE == "m.pth"
    assert cfg.DATASET.ROOT == "data/imagenet/images"
    assert str(config.output_dir(cfg, path)) == "out/imagenet/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100"


def test_short_name_and_path_give_the_same_config():
    a, _ = config.load_config("w48")
    b, _ = config.load_config(str(config.EXPERIMENTS_DIR / "cls_hrnet_w48_sgd_lr5e-2_wd1e-4_bs32_x100.yaml"))
    assert a == b


def test_unknown_cfg_names_the_choices():
    with pytest.raises(UserError, match=r"--cfg w17: no such config file .*w18_small_v1"):
        config.load_config("w17")


def write(tmp_path, text):
    src = (config.EXPERIMENTS_DIR / "cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml").read_text()
    p = tmp_path / "bad.yaml"
    p.write_text(text(src))
    return str(p)


@pytest.mark.parametrize("old,new,message", [
    ("  LR: 0.05", "  LRATE: 0.05", "unknown key TRAIN.LRATE"),
    ("NUM_BRANCHES: 3", "NUM_BRANCH: 3", "MODEL.EXTRA.STAGE3: unknown key NUM_BRANCH"),
    ("      - 144\n", "", "STAGE4.NUM_CHANNELS: 3 entries for NUM_BRANCHES 4"),
    ("END_EPOCH: 100", "END_EPOCH: many", "bad.yaml"),
], ids=["wrong_top_level_key", "wrong_stage_key", "branch_count_mismatch", "wrong_type"])
def test_bad_yaml_is_a_user_error(tmp_path, old, new, message):
    p = write(tmp_path, lambda s: s.replace(old, new))
    with pytest.raises(UserError, match=message):
        config.load_config(p)
