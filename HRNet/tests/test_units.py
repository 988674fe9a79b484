"""Formulas and formats against values worked out by hand."""
import math

import numpy as np
import pytest
import torch
from hrnet_cls import imagenet
from hrnet_cls.evaluate import accuracy
from hrnet_cls.function import EpochResult, steady
from hrnet_cls.optim import lr_at_epoch
from PIL import Image

from common.errors import UserError
from common.meters import AverageMeter


def test_topk_accuracy_percent():
    logits = torch.tensor([[0.1, 0.9, 0.0],    # top1 1, top2 {1,0}; target 1: hit, hit
                           [0.8, 0.15, 0.05],  # top1 0, top2 {0,1}; target 1: miss, hit
                           [0.2, 0.3, 0.5],    # top1 2, top2 {2,1}; target 0: miss, miss
                           [0.35, 0.25, 0.4]])  # top1 2, top2 {2,0}; target 2: hit, hit
    target = torch.tensor([1, 1, 0, 2])
    assert accuracy(logits, target, (1, 2)) == [50.0, 75.0]
    assert accuracy(logits, target, (1, 5)) == [50.0, 100.0]  # fewer classes than k: every target is in


def test_average_meter_weights_by_batch():
    m = AverageMeter()
    m.update(50.0, 2)
    m.update(100.0, 1)
    assert m.val == 100.0 and m.count == 3 and m.avg == pytest.approx(200 / 3)


@pytest.mark.parametrize("epoch,upstream,port", [(0, 0.05, 0.05), (28, 0.05, 0.05), (29, 0.05, 0.005),
                                                 (30, 0.005, 0.005), (59, 0.005, 0.0005), (60, 0.0005, 0.0005),
                                                 (89, 0.0005, 0.00005), (90, 0.00005, 0.00005),
                                                 (99, 0.00005, 0.00005)])
def test_step_schedule(epoch, upstream, port):
    assert lr_at_epoch(epoch, 0.05, [30, 60, 90], 0.1, "upstream") == pytest.approx(upstream)
    assert lr_at_epoch(epoch, 0.05, [30, 60, 90], 0.1, "port") == pytest.approx(port)


def test_step_schedule_with_a_period():
    assert lr_at_epoch(59, 1.0, 30, 0.5) == 0.5 and lr_at_epoch(60, 1.0, 30, 0.5) == 0.25


def test_fps_average_drops_first_and_last_five_steps():
    assert steady(list(range(1, 13))) == [6, 7]
    assert steady([1, 2, 3, 4]) == [2, 3]
    assert steady([1, 2]) == [1, 2]
    r = EpochResult(batch_time=[9, 9, 9, 9, 9, 2, 4, 9, 9, 9, 9, 9], loss=[5] * 5 + [1, 2, 3, 4, 5, 6, 7],
                    top1=[0] * 5 + [10] * 7)
    time_avg, fps, loss, top1 = r.averages(global_batch=60)
    assert (time_avg, fps, loss, top1) == (3.0, 20.0, 4.0, 10.0)


def test_normalize_is_totensor_then_imagenet_normalize():
    x = torch.zeros(1, 3, 1, 2, dtype=torch.uint8)
    x[0, :, 0, 1] = 255
    y = imagenet.normalize(x, torch.device("cpu"))
    assert y[0, 0, 0, 0].item() == pytest.approx(-0.485 / 0.229, abs=1e-6)
    assert y[0, 0, 0, 1].item() == pytest.approx((1 - 0.485) / 0.229, abs=1e-6)
    assert y[0, 2, 0, 1].item() == pytest.approx((1 - 0.406) / 0.225, abs=1e-6)


def test_random_resized_crop_falls_back_to_the_ratio_clamped_centre():
    # 1000x10: every try needs h >= sqrt(0.08*10000*3/4) > 10, so all fail; ratio 100 > 4/3 -> h 10, w 13
    g = torch.Generator().manual_seed(0)
    assert imagenet.random_resized_crop_params(1000, 10, g) == (0, 493, 10, 13)


def test_val_transform_resize_shorter_side_then_centre_crop():
    arr = np.zeros((50, 100, 3), np.uint8)
    arr[:, 50:] = 255  # right half white
    out = imagenet.val_transform(Image.fromarray(arr), 32)
    # shorter side 50 -> int(32/0.875) = 36, width 72; crop columns 20..51, so the edge sits at column 16
    assert out.size == (32, 32)
    a = np.asarray(out)
    assert a[:, :15].max() == 0 and a[:, 17:].min() == 255


def test_epoch_sampler_pads_and_splits_ranks():
    r0 = imagenet.EpochSampler(5, rank=0, world_size=2, seed=3)
    r1 = imagenet.EpochSampler(5, rank=1, world_size=2, seed=3)
    for s in (r0, r1):
        s.set_epoch(1)
    a, b = r0.indices(), r1.indices()
    assert len(a) == len(b) == 3 and len(r0) == 3
    assert sorted(set(a) | set(b)) == [0, 1, 2, 3, 4]
    assert r0.indices() == a  # a function of (seed, epoch)
    r0.set_epoch(1, start=2)
    assert [i for i, _ in r0] == a[2:] and len(r0) == 1
    r0.set_epoch(2)
    r1.set_epoch(2)
    assert sorted(set(r0.indices()) | set(r1.indices())) == [0, 1, 2, 3, 4]
    assert r0.indices() + r1.indices() != a + b  # a new order each epoch


def make_folder(root, split, classes, n=2, size=(40, 30)):
    for c in classes:
        d = root / split / c
        d.mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", size, (i * 50, 0, 0)).save(d / f"{c}_{i}.JPEG")


def test_val_labels_follow_train_class_order(tmp_path):
    make_folder(tmp_path, "train", ["b", "a", "c"])
    make_folder(tmp_path, "val", ["c", "a"], n=1)
    train, classes = imagenet.scan_split(tmp_path, "train")
    assert classes == ["a", "b", "c"] and [lbl for _, lbl in train] == [0, 0, 1, 1, 2, 2]
    val, _ = imagenet.scan_split(tmp_path, "val", classes)
    assert [(p.split("/")[-2], lbl) for p, lbl in val] == [("a", 0), ("c", 2)]


def test_empty_class_folder_and_foreign_val_class(tmp_path):
    make_folder(tmp_path, "train", ["a", "b"])
    (tmp_path / "train" / "c").mkdir()
    with pytest.raises(UserError, match=r"class folder .*train/c has no images"):
        imagenet.scan_split(tmp_path, "train")
    (tmp_path / "train" / "c").rmdir()
    make_folder(tmp_path, "val", ["a", "z"], n=1)
    with pytest.raises(UserError, match=r"val class 'z' .* has no folder in .*train"):
        imagenet.scan_split(tmp_path, "val", ["a", "b"])


def test_train_sample_is_a_function_of_its_seed(tmp_path):
    make_folder(tmp_path, "train", ["a"], n=1, size=(80, 60))
    samples, classes = imagenet.scan_split(tmp_path, "train")
    ds = imagenet.ImageNetFolder(samples, classes, 32, train=True)
    x1, y1 = ds[(0, 123)]
    x2, _ = ds[(0, 123)]
    assert x1.dtype == torch.uint8 and x1.shape == (3, 32, 32) and y1 == 0
    assert torch.equal(x1, x2)
    seeds = {imagenet.sample_seed(0, e, 0) for e in range(3)}
    assert len(seeds) == 3 and all(0 <= s < 2 ** 63 for s in seeds)
    assert math.isclose(imagenet.CROP_PCT, 0.875)


def test_weights_load_with_ddp_prefix_and_reject_another_model(tmp_path):
    from hrnet_cls.checkpoints import load_weights
    from hrnet_cls.cls_hrnet import get_cls_net
    from hrnet_cls.config import load_config

    cfg, _ = load_config("demo_tiny")
    torch.manual_seed(1)
    src = get_cls_net(cfg)
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, tmp_path / "ddp.pth")
    dst = get_cls_net(cfg)
    load_weights(dst, tmp_path / "ddp.pth")
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    torch.save({"epoch": 3, "state_dict": src.state_dict()}, tmp_path / "ckpt.pth.tar")
    load_weights(dst, tmp_path / "ckpt.pth.tar")  # a checkpoint.pth.tar works too
    other = {k: v for k, v in src.state_dict().items() if not k.startswith("classifier")}
    torch.save(other, tmp_path / "headless.pth")
    with pytest.raises(UserError, match=r"does not fit this model: 2 missing keys \(e.g. classifier.weight\)"):
        load_weights(dst, tmp_path / "headless.pth")


def test_non_finite_loss_stops_with_the_step(tmp_path):
    from hrnet_cls.function import NonFiniteLoss, train_one_epoch

    from common.amp import Amp

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 10))
    images = torch.zeros(4, 3, 4, 4, dtype=torch.uint8)
    batches = [(images, torch.zeros(4, dtype=torch.long))] * 3
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    loader_len = len(batches)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss \(nan\) at epoch 2 step 7"):
        train_one_epoch(model, _Sized(loader, loader_len, 4), torch.nn.CrossEntropyLoss(), opt,
                        Amp(False, torch.device("cpu")), 2, device=torch.device("cpu"), global_batch=4,
                        print_freq=100, log=lambda *a, **k: None, start_step=7)


class _Sized:
    """A loader stand-in with the attributes train_one_epoch reads."""

    def __init__(self, loader, n, batch_size):
        self.loader, self.n, self.batch_size, self.sampler = loader, n, batch_size, range(n * batch_size)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self):
        return self.n
