"""Train AlignedReID (ResNet-50, batch-hard triplet loss) on Market-1501; test at the end.

    python train.py --data_path=/data/market1501 --normalize_feature false -glw 1 -llw 0 -idlw 0 \
        --base_lr 2e-4 --exp_decay_at_epoch 151 --total_epochs 300          # upstream README recipe
    python train.py --data_path=... --only_test true --model_weight_file ckpt.pth
8p: bash test/train_full_8p.sh --data_path=... (torchrun; every rank trains its own PK batches).
"""
import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from common.cli import ArgumentParser, nonneg_int, positive_int
from common.errors import UserError, main_guard

DEFAULT_IDS_PER_BATCH = 32


# ----------------------------------------------------------------------------- the batch, in one place
def add_batch_args(p):
    p.add_argument("--batch_size", type=positive_int, default=None,
                   help="images per device per step = ids_per_batch x ims_per_id (default 32 x 4 = 128); "
                        "the test scripts' --batch_size")
    p.add_argument("--ids_per_batch", type=positive_int, default=None,
                   help=f"identities per batch per device (default {DEFAULT_IDS_PER_BATCH})")
    p.add_argument("--ims_per_id", type=positive_int, default=4, help="images per identity in a batch")


def resolve_batch(batch_size, ids_per_batch, ims_per_id):
    """(ids per device, images per device) of one step: the only place that relates --batch_size
    (images per device, the test scripts' key) to upstream's --ids_per_batch x --ims_per_id. The
    job's global batch is images per device x the number of ranks (all nodes)."""
    if batch_size is None:
        ids = ids_per_batch or DEFAULT_IDS_PER_BATCH
        return ids, ids * ims_per_id
    if batch_size % ims_per_id:
        raise UserError(f"--batch_size {batch_size} (images per device) is not a multiple of --ims_per_id "
                        f"{ims_per_id}: use a multiple of {ims_per_id}")
    ids = batch_size // ims_per_id
    if ids_per_batch is not None and ids_per_batch != ids:
        raise UserError(f"--batch_size {batch_size} and --ids_per_batch {ids_per_batch} disagree: --batch_size "
                        f"counts images per device = ids_per_batch x ims_per_id ({ims_per_id}); give one of them")
    return ids, batch_size


@main_guard
def print_batch_size(argv):
    """`train.py --print_batch_size [flags]`: print the images per device the flags give, and exit.
    The test scripts call it for their summary's BatchSize, so no shell does batch arithmetic.
    Runs before torch is imported (a few ms)."""
    p = ArgumentParser(add_help=False)
    add_batch_args(p)
    a, _ = p.parse_known_args(argv)
    print(resolve_batch(a.batch_size, a.ids_per_batch, a.ims_per_id)[1])


if __name__ == "__main__" and "--print_batch_size" in sys.argv[1:]:
    print_batch_size([a for a in sys.argv[1:] if a != "--print_batch_size"])
    sys.exit(0)

import dataclasses
import math
import random
import signal
import time

import torch
from aligned_reid import evaluate_model, losses, weights
from aligned_reid.images import ImageList, collate, load_all, normalize
from aligned_reid.lr_schedule import epoch_lr, lr_adjusted_line
from aligned_reid.market1501 import TestSplit, TrainSplit, load_partitions
from aligned_reid.model import ARCHS, AlignedReID, load_pretrained_backbone
from aligned_reid.sampler import PKBatchSampler
from torch.utils.data import DataLoader

from common import amp, checkpoint, distributed
from common.cli import add_bool, float_range, int_tuple, nonneg_float, positive_float
from common.data import loader_kwargs
from common.device import add_device_args, synchronize
from common.fps import FpsMeter
from common.metrics_file import FILE_NAME as METRICS_NAME
from common.metrics_file import MetricsFile, add_tensorboard_arg, tensorboard_writer
from common.progress import Console, Tee

# flags that define the run's result: a resume with other values is refused (--allow_recipe_change)
RECIPE_KEYS = ("arch", "num_models", "dataset", "pkl", "trainset_part", "resize_h_w", "ids_per_batch", "ims_per_id",
               "normalize_feature", "local_dist_own_hard_sample", "global_margin", "local_margin", "glw", "llw",
               "idlw", "pmlw", "gdmlw", "ldmlw", "base_lr", "lr_decay_type", "exp_decay_at_epoch",
               "staircase_decay_at_epochs", "staircase_decay_multiply_factor", "total_epochs", "amp", "opt_level",
               "train_final_batch", "shuffle_ids", "id_split", "num_ranks")
# test-only hook (tests/test_scripts.py, --max_restarts): "RANK:STEP" makes that rank SIGKILL itself
# once, after that global step, in the first attempt of a torchrun job (TORCHELASTIC_RESTART_COUNT 0)
KILL_HOOK_ENV = "ALIGNEDREID_TEST_KILL_AT"


def get_parser():
    p = ArgumentParser(description="AlignedReID person re-identification (Market-1501)")
    # model card (Ascend) flags
    p.add_argument("--data_path", "--data_pth", dest="data_path", default="/home/dataset/market1501",
                   help="prepared market1501 directory: images/, partitions.pkl (tools/transform_market1501.py)")
    p.add_argument("--pkl", default="partitions.pkl", help="partition file inside --data_path")
    p.add_argument("--addr", default="127.0.0.1", help="master address (torchrun's --master_addr in 8p)")
    p.add_argument("-j", "--workers", type=nonneg_int, default=2, help="data loading workers per rank")
    p.add_argument("--total_epochs", type=positive_int, default=300)
    p.add_argument("--base_lr", type=positive_float, default=2e-4)
    p.add_argument("--exp_decay_at_epoch", type=positive_int, default=151)
    p.add_argument("--npu", type=nonneg_int, default=None, help="1p device index (same as --device_id)")
    add_batch_args(p)  # --batch_size, --ids_per_batch, --ims_per_id
    # upstream (huanghoujing) flags
    p.add_argument("-d", "--sys_device_ids", type=int_tuple(lo=0), default=None,
                   help="upstream device tuple; its first entry = --device_id")
    p.add_argument("-r", "--run", type=nonneg_int, default=1,
                   help="upstream's run number: run<r> of the default --exp_dir")
    add_bool(p, "--set_seed", default=False, help="seed 1 (upstream); --seed N sets another")
    p.add_argument("--dataset", default="market1501", choices=["market1501", "cuhk03", "duke", "combined"],
                   help="name only: every dataset uses the same prepared layout")
    p.add_argument("--trainset_part", default="trainval", choices=["trainval", "train"])
    p.add_argument("--resize_h_w", type=int_tuple(2, lo=1), default="(256,128)", help="input (height,width)")
    p.add_argument("--crop_prob", type=float_range(0, 1), default=0.0, help="only 0 (upstream default) is supported")
    p.add_argument("--crop_ratio", type=float_range(0, 1, lo_open=True), default=1.0)
    add_bool(p, "--log_to_file", default=False, help="also write stdout to <exp_dir>/stdout_<time>.txt")
    add_bool(p, "--normalize_feature", default=False, help="README recipe: false")
    add_bool(p, "--local_dist_own_hard_sample", default=False)
    # the short loss flags (-gm -lm -glw -llw -idlw -pmlw -gdmlw -ldmlw) are upstream's, used by its README recipe
    p.add_argument("-gm", "--global_margin", type=nonneg_float, default=0.3)
    p.add_argument("-lm", "--local_margin", type=nonneg_float, default=0.3)
    p.add_argument("-glw", "--g_loss_weight", dest="glw", type=nonneg_float, default=1.0)
    p.add_argument("-llw", "--l_loss_weight", dest="llw", type=nonneg_float, default=0.0)
    p.add_argument("-idlw", "--id_loss_weight", dest="idlw", type=nonneg_float, default=0.0)
    p.add_argument("--num_models", type=positive_int, default=1, help="mutual learning: models trained together")
    p.add_argument("-pmlw", "--pm_loss_weight", dest="pmlw", type=nonneg_float, default=1.0)
    p.add_argument("-gdmlw", "--gdm_loss_weight", dest="gdmlw", type=nonneg_float, default=1.0)
    p.add_argument("-ldmlw", "--ldm_loss_weight", dest="ldmlw", type=nonneg_float, default=0.0)
    add_bool(p, "--only_test", default=False)
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from PATH; bare: <exp_dir>/ckpt.pth, or from scratch (said in the log) when "
                        "there is none yet")
    add_bool(p, "--allow_recipe_change", default=False,
             help="resume even when recipe flags differ from the checkpoint's (logged as a warning)")
    p.add_argument("--exp_dir", default="", help="checkpoint folder (default exp/train/<dataset>/run<r>)")
    p.add_argument("--model_weight_file", default="", help="weights to start from / to test (ckpt.pth or state_dict)")
    p.add_argument("--lr_decay_type", default="exp", choices=["exp", "staircase"])
    p.add_argument("--staircase_decay_at_epochs", type=int_tuple(lo=1), default="(101,201)")
    p.add_argument("--staircase_decay_multiply_factor", type=positive_float, default=0.1)
    # Ascend 8p flags; torchrun provides these, accepted for compatibility
    p.add_argument("--world-size", type=positive_int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--rank", type=nonneg_int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed_ascend", type=nonneg_int, default=None, help=argparse.SUPPRESS)
    for flag in ("--dist-url", "--dist-backend", "--device-list", "--multiprocessing-distributed"):
        p.add_argument(flag, default=None, help=argparse.SUPPRESS)
    # extras
    add_device_args(p)
    amp.add_amp_args(p, default_opt_level="O1", default_loss_scale="128")
    p.add_argument("--seed", type=nonneg_int, default=None, help="random seed (default: 1 with --set_seed, else drawn)")
    p.add_argument("--max_steps", type=positive_int, default=None, help="stop after this many optimizer steps")
    p.add_argument("--arch", default="resnet50", choices=list(ARCHS), help="tiny: tests/demo only")
    p.add_argument("--pretrained_path", default="", help="local ImageNet ResNet weights (resnet50-19c8e357.pth)")
    add_bool(p, "--channels_last", default=True, help="channels-last memory format (--channels_last false: off)")
    p.add_argument("--no-channels_last", dest="channels_last", action="store_false", help=argparse.SUPPRESS)
    add_bool(p, "--cache_images", default=True,
             help="decode+resize the train set once into memory (uint8; Market-1501 ~1.3 GB)")
    add_bool(p, "--skip_bad_images", default=False, help="skip unreadable images (logged, counted)")
    p.add_argument("--log_steps", type=nonneg_int, default=20, help="step line every N steps (0: epoch lines only)")
    p.add_argument("--fps_warmup_steps", type=nonneg_int, default=2, help="steps of each epoch excluded from FPS")
    add_bool(p, "--re_rank", default=True, help="also score k-reciprocal re-ranked distances")
    p.add_argument("--ap", default="trapezoid", choices=["trapezoid", "step"],
                   help="trapezoid: upstream/sklearn 0.18.1 AP; step: sklearn>=0.19 (Ascend)")
    p.add_argument("--eval_batch_size", type=positive_int, default=32)
    add_tensorboard_arg(p)  # --tensorboard DIR: the metrics file's scalars as TensorBoard events too
    add_bool(p, "--train_final_batch", default=False, help="keep the last partial id batch (Ascend)")
    add_bool(p, "--shuffle_ids", default=True, help="false: fixed id order (Ascend as written)")
    p.add_argument("--id_split", default="shard", choices=["shard", "replicate"],
                   help="8p: shard = ranks split the ids (an epoch is one pass of the job); "
                        "replicate = every rank walks all ids in its own order (Ascend step count)")
    return p


def check_args(args, world_size):
    """Checks that need several flags together; every single flag was range-checked by the parser."""
    if args.crop_prob != 0:
        raise UserError("--crop_prob other than 0 is not supported (the upstream recipes use 0)")
    args.ids_per_batch, args.batch_size = resolve_batch(args.batch_size, args.ids_per_batch, args.ims_per_id)
    args.num_ranks = world_size
    if args.sys_device_ids and args.npu is None:
        args.npu = args.sys_device_ids[0]
    args.exp_dir = args.exp_dir or os.path.join("exp", "train", args.dataset, f"run{args.run}")


def build_models(args, num_classes, device, log):
    """--num_models AlignedReIDs on `device`: ImageNet backbone (--pretrained_path) or random init, then
    --model_weight_file's weights when given."""
    models = []
    for _ in range(args.num_models):
        model = AlignedReID(num_classes, args.arch)
        if args.pretrained_path:
            load_pretrained_backbone(model, args.pretrained_path)
        models.append(model)
    log(f"ImageNet backbone weights from {args.pretrained_path}" if args.pretrained_path else
        "no --pretrained_path given: the backbone starts from random init (upstream uses ImageNet weights)")
    if args.model_weight_file:
        sds, _ = weights.read_checkpoint(args.model_weight_file)
        for i, model in enumerate(models):
            weights.load_weights(model, sds[min(i, len(sds) - 1)], f"--model_weight_file {args.model_weight_file}")
        log(f"loaded model weights from {args.model_weight_file}")
    models = [m.to(device) for m in models]
    if args.channels_last:
        models = [m.to(memory_format=torch.channels_last) for m in models]
    return models


def model_losses(i, outs, labels, tri_g, tri_l, args):
    """Loss of model i and its log statistics; other models' outputs enter detached."""
    g_feat, l_feat, logits = [o.float() for o in outs[i]]
    stats, loss = {}, 0.0
    g_loss, p_inds, n_inds, g_ap, g_an, g_mat = losses.global_loss(tri_g, g_feat, labels, args.normalize_feature)
    stats.update(gp=(g_an > g_ap).float().mean(), gm=(g_an > g_ap + args.global_margin).float().mean(),
                 gd_ap=g_ap.mean(), gd_an=g_an.mean(), gL=g_loss)
    loss = loss + args.glw * g_loss
    own = args.local_dist_own_hard_sample
    l_mat = None
    if args.llw > 0 or (args.ldmlw > 0 and own and len(outs) > 1):
        l_loss, l_ap, l_an, l_mat = losses.local_loss(tri_l, l_feat, labels, None if own else p_inds,
                                                      None if own else n_inds, args.normalize_feature)
        if args.llw > 0:
            stats.update(lp=(l_an > l_ap).float().mean(), lm=(l_an > l_ap + args.local_margin).float().mean(),
                         ld_ap=l_ap.mean(), ld_an=l_an.mean(), lL=l_loss)
            loss = loss + args.llw * l_loss
    if args.idlw > 0:
        id_loss = torch.nn.functional.cross_entropy(logits, labels)
        stats["idL"] = id_loss
        loss = loss + args.idlw * id_loss
    if len(outs) > 1:
        others = [j for j in range(len(outs)) if j != i]
        if args.pmlw > 0:
            stats["pmL"] = losses.probability_mutual_loss(logits, [outs[j][2].float() for j in others])
            loss = loss + args.pmlw * stats["pmL"]
        if args.gdmlw > 0:
            mats = [losses.euclidean_dist(*(2 * [losses.normalize(outs[j][0].float()) if args.normalize_feature
                                                else outs[j][0].float()])) for j in others]
            stats["gdmL"] = losses.distance_mutual_loss(g_mat, mats)
            loss = loss + args.gdmlw * stats["gdmL"]
        if args.ldmlw > 0 and own and l_mat is not None:
            mats = [losses.local_dist(*(2 * [losses.normalize(outs[j][1].float()) if args.normalize_feature
                                             else outs[j][1].float()])) for j in others]
            stats["ldmL"] = losses.distance_mutual_loss(l_mat, mats)
            loss = loss + args.ldmlw * stats["ldmL"]
    stats["loss"] = loss
    return loss, {k: v.detach() for k, v in stats.items()}


def stats_text(s, fps=None):
    """Upstream's ', gp .., gL ..' (+ local, id, mutual parts) + ', loss ..' ('fps' goes before loss)."""
    out = ""
    if "gL" in s:
        out += ", gp {:.2%}, gm {:.2%}, gd_ap {:.4f}, gd_an {:.4f}, gL {:.4f}".format(
            s["gp"], s["gm"], s["gd_ap"], s["gd_an"], s["gL"])
    if "lL" in s:
        out += ", lp {:.2%}, lm {:.2%}, ld_ap {:.4f}, ld_an {:.4f}, lL {:.4f}".format(
            s["lp"], s["lm"], s["ld_ap"], s["ld_an"], s["lL"])
    for k in ("idL", "pmL", "gdmL", "ldmL"):
        if k in s:
            out += f", {k} {s[k]:.4f}"
    if fps is not None:
        out += f", fps {fps:.2f}"
    return out + ", loss {:.4f}".format(s["loss"])


def loss_values(stats, models_stats=()):
    """The losses of a stats dict (model 1) for the metrics file: 'loss' and the parts (gL, lL, idL, ...);
    further models' totals as model<N>_loss."""
    out = {k: float(v) for k, v in stats.items() if k == "loss" or k.endswith("L")}
    for i, s in enumerate(models_stats, start=2):
        out[f"model{i}_loss"] = float(s["loss"])
    return out


def metric_values(results):
    """Every score of model 1's test as metrics-file entries (fractions): the reported one (global
    distance, no re-ranking) as mAP/rank1/rank5/rank10, the others prefixed with their name."""
    out = {}
    for name, mAP, cmc in results:
        prefix = "" if name == evaluate_model.REPORTED else name.lower().replace(" ", "_").replace("+", "_") + "/"
        out.update({f"{prefix}mAP": mAP, f"{prefix}rank1": cmc[0], f"{prefix}rank5": cmc[4],
                    f"{prefix}rank10": cmc[9]})
    return out


def save_checkpoint(path, models, optimizers, precision, args, seed, epoch, step_in_epoch, global_step):
    """Upstream's ckpt.pth layout {'state_dicts': [models..., optimizers...], 'ep', 'scores'} plus
    what an exact resume needs, all plain data (loads with torch.load(weights_only=True)).
    'ep' counts finished epochs."""
    state = {"state_dicts": [distributed.unwrap(m).state_dict() for m in models] + [o.state_dict() for o in optimizers],
             "ep": epoch, "scores": 0,
             weights.META_KEY: {"args": checkpoint.plain_args(args), "arch": args.arch, "num_models": len(models),
                                "seed": seed, "step_in_epoch": step_in_epoch, "global_step": global_step,
                                "amp": precision.state_dict(), "rng": checkpoint.rng_state()}}
    checkpoint.atomic_save(state, path)


def read_resume(path, args, log):
    """The checkpoint to resume from, checked: written by this train.py, same model count and recipe."""
    resume = checkpoint.require_dict(checkpoint.load(path, what="resume checkpoint"), path, "resume checkpoint")
    meta = resume.get(weights.META_KEY)
    needed = ("num_models", "seed", "step_in_epoch", "global_step")
    if not isinstance(meta, dict) or any(k not in meta for k in needed) or not isinstance(
            resume.get("state_dicts"), list) or not isinstance(resume.get("ep"), int) or not all(
            isinstance(sd, dict) for sd in resume["state_dicts"]):
        raise UserError(f"{path} is not a resumable AlignedReID checkpoint (written by this train.py); "
                        "to start from its weights use --model_weight_file")
    if meta["num_models"] != args.num_models or len(resume["state_dicts"]) != 2 * args.num_models:
        raise UserError(f"{path} holds {meta['num_models']} model(s), --num_models is {args.num_models}")
    saved = meta.get("args") if isinstance(meta.get("args"), dict) else {}
    checkpoint.check_recipe(checkpoint.plain_args(saved), checkpoint.plain_args(args), RECIPE_KEYS, path,
                            allowed=args.allow_recipe_change, log=log)
    return resume


def maybe_kill_for_test(rank, global_step):
    """The documented test-only hook (KILL_HOOK_ENV): lose one worker mid-run, once."""
    spec = os.environ.get(KILL_HOOK_ENV)
    if spec and distributed.restart_count() == 0 and spec == f"{rank}:{global_step}":
        print(f"[test hook] rank {rank} kills itself after step {global_step}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def require_tensorboard(directory):
    """--tensorboard needs the optional tensorboard package: one line up front, before anything is read."""
    if directory:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            tensorboard_writer(directory)  # raises common's one-line error


class TrainBatches:
    """This rank's training batches: the PK sampler over the train images decoded once into memory
    (--cache_images), or read by a DataLoader. Yields (uint8 images, indices, flips)."""

    def __init__(self, train_split, args, seed, dist, device, log):
        h, w = args.resize_h_w
        images = ImageList(train_split.img_dir, train_split.names, h, w, args.skip_bad_images)
        kept, self.store, self.loader = None, None, None
        if args.cache_images:
            t0 = time.time()
            self.store, kept_t = load_all(images, args.workers)
            kept = kept_t.numpy()
            log(f"decoded {int(kept.sum())} train images once into memory ({self.store.numel() / 2 ** 20:.0f} MiB "
                f"uint8) in {time.time() - t0:.1f}s")
            if not kept.all():
                log(f"[Warning] skipped {int((~kept).sum())} unreadable train image(s)")
        self.sampler = PKBatchSampler(train_split.labels, args.ids_per_batch, args.ims_per_id, seed, dist.rank,
                                      dist.world_size, flip=True, final_batch=args.train_final_batch,
                                      shuffle=args.shuffle_ids, kept=kept, split=args.id_split)
        self.labels = torch.as_tensor(train_split.labels)
        if not args.cache_images:
            self.loader = DataLoader(images, batch_sampler=self.sampler, collate_fn=collate,
                                     **loader_kwargs(args.workers, device))

    def __len__(self):
        return len(self.sampler)

    def set_epoch(self, epoch, skip):
        self.sampler.set_epoch(epoch, skip)

    def __iter__(self):
        if self.loader is not None:
            yield from (bt for bt in self.loader if bt is not None)
            return
        for batch in self.sampler:
            idx = torch.tensor([i for i, _ in batch])
            yield self.store[idx], idx, torch.tensor([f for _, f in batch])


def restore(resume, resume_path, models, optimizers, precision, args, log):
    """Load a resume checkpoint into the models, optimizers and AMP state; (start epoch, step in it,
    global step). A fresh run: (1, 0, 0)."""
    if resume is None:
        return 1, 0, 0
    meta = resume[weights.META_KEY]
    n = args.num_models
    for i in range(n):
        weights.load_weights(models[i], resume["state_dicts"][i], f"resume checkpoint {resume_path}")
        try:
            optimizers[i].load_state_dict(resume["state_dicts"][n + i])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"resume checkpoint {resume_path}: optimizer state {i + 1} does not fit this model "
                            f"({type(exc).__name__}: {exc})".splitlines()[0]) from None
    precision.load_state_dict(meta.get("amp"))
    start_epoch, start_batch = resume["ep"] + 1, meta["step_in_epoch"]
    log(f"resumed from {resume_path}: {resume['ep']} epoch(s) done, {start_batch} step(s) into epoch {start_epoch}")
    return start_epoch, start_batch, meta["global_step"]


def set_epoch_lr(optimizers, args, epoch, log):
    """Upstream's schedules change the lr at the start of some epochs (and say so)."""
    lr = epoch_lr(args, epoch)
    if lr is not None:
        for opt in optimizers:
            for g in opt.param_groups:
                g["lr"] = lr
        log(lr_adjusted_line(lr))


@dataclasses.dataclass
class EpochResult:
    step: int  # steps of the epoch done (resumed ones included)
    n_steps: int  # steps this call ran
    global_step: int
    stopped: bool  # by --max_steps
    means: list  # per model: the epoch's mean loss statistics over all ranks
    fps: float | None


def train_one_epoch(epoch, skip, ddps, optimizers, precision, batches, triplets, meter, global_step, args, dist,
                    device, console, metrics, ckpt_path) -> EpochResult:
    """One epoch (from step `skip` of it): forward all models, their losses, one optimizer step each;
    step lines every --log_steps (and metrics-file step rows), the epoch line(s) at the end."""
    batches.set_epoch(epoch, skip)
    for m in ddps:
        m.train()
    ep_start = time.time()
    console.bar(len(batches), f"Ep {epoch}/{args.total_epochs}", initial=skip)
    sums = [dict() for _ in ddps]
    n_steps, step, stopped, dt = 0, skip, False, 0.0
    meter.reset_epoch()
    for ims, idx, flips in batches:
        x = normalize(ims, flips, device, args.channels_last)
        labels = batches.labels[idx].to(device)
        with precision.autocast():
            outs = [m(x) for m in ddps]
        step_losses = []
        for i in range(len(ddps)):
            loss, stats = model_losses(i, outs, labels, *triplets, args)
            step_losses.append(loss)
            for k, v in stats.items():
                sums[i][k] = sums[i].get(k, 0.0) + v
        for loss, opt in zip(step_losses, optimizers):
            opt.zero_grad(set_to_none=True)
            precision.backward(loss, opt)
            precision.step(opt)
        loss_value = float(step_losses[0].detach())
        if not math.isfinite(loss_value):
            raise UserError(f"non-finite loss {loss_value} at step {global_step + 1} (epoch {epoch}); "
                            f"the last checkpoint {ckpt_path} is intact")
        synchronize(device)
        dt = meter.step()
        step += 1
        n_steps += 1
        global_step += 1
        maybe_kill_for_test(dist.rank, global_step)
        console.update(loss=loss_value, images_per_sec=meter.rate(dt))
        if args.log_steps and step % args.log_steps == 0:
            s = {k: float(v) for k, v in stats.items()} if len(ddps) == 1 else \
                {k: float(v) for k, v in model_losses(0, outs, labels, *triplets, args)[1].items()}
            console.log(f"\tStep {step}/Ep {epoch}, {dt:.2f}s" + stats_text(s, meter.rate(dt)))
            metrics.step(epoch, global_step, lr=optimizers[0].param_groups[0]["lr"],
                         images_per_sec=meter.rate(dt), **loss_values(s))
        if args.max_steps is not None and global_step >= args.max_steps:
            stopped = True
            break
    console.close_bar()
    # epoch means over all ranks
    means = [{k: distributed.all_reduce_mean(float(v) / max(n_steps, 1), dist) for k, v in sums[i].items()}
             for i in range(len(ddps))]
    fps = meter.epoch_fps if meter.epoch_fps is not None else meter.rate(dt) if n_steps else None
    if n_steps:
        console.log(f"Ep {epoch}, {time.time() - ep_start:.2f}s, FPS {fps or 0.0:.2f}" + stats_text(means[0]))
        for i in range(1, len(ddps)):
            console.log(f"Ep {epoch}, model {i + 1}" + stats_text(means[i]))
    return EpochResult(step, n_steps, global_step, stopped, means, fps)


def final_test(models, ddps, test_split, device, precision, args, dist, log):
    """Every rank takes rank 0's BatchNorm statistics (the ones the checkpoint holds); rank 0 tests
    every model and reports model 1. Model 1's [(name, mAP, cmc)] on rank 0, else None."""
    for m in ddps:
        distributed.sync_buffers_from_main(m, dist)
    if not dist.is_main:
        return None
    results = []
    for i, m in enumerate(models):
        if len(models) > 1:
            log(f"=====> Model {i + 1}")
        results.append(evaluate_model.run_test(distributed.unwrap(m), test_split, device, precision, args, log))
    evaluate_model.report(results[0], log, more_models=len(results) > 1)
    return results[0]


def open_console(args, is_main):
    """The rank-0 printer (a progress bar only when stdout is a terminal); with --log_to_file stdout
    is copied to <exp_dir>/stdout_<time>.txt first."""
    if args.log_to_file and is_main:
        path = os.path.join(args.exp_dir, time.strftime("stdout_%Y-%m-%d_%H:%M:%S.txt"))
        sys.stdout = Tee(sys.stdout, path)
    return Console(is_main)


def find_resume(args, ckpt_path, is_main, log):
    """(checkpoint dict, its path) to resume from, checked; (None, None) for a fresh run or --only_test."""
    if args.only_test:
        return None, None
    if is_main:
        checkpoint.clean_stale_temps(args.exp_dir)  # of a write that a crash interrupted
    path = checkpoint.resolve_resume(args.resume, ckpt_path, log)
    return (read_resume(path, args, log), path) if path else (None, None)


def run_seed(args, resume) -> int:
    """The resumed run's seed, else --seed, else 1 with --set_seed (upstream), else drawn."""
    if resume:
        return resume[weights.META_KEY]["seed"]
    if args.seed is not None:
        return args.seed
    return 1 if args.set_seed else random.SystemRandom().randrange(2 ** 31)


def read_data(args):
    """(test split, train split or None with --only_test, identities of the ID classifier)."""
    parts = load_partitions(args.data_path, args.pkl)
    test_split = TestSplit(args.data_path, parts)
    train_split = None if args.only_test else TrainSplit(args.data_path, parts, args.trainset_part)
    num_classes = train_split.num_classes if train_split else len(parts["trainval_ids2labels"])
    if args.only_test and args.model_weight_file:  # test a checkpoint trained on another id count too
        sds, _ = weights.read_checkpoint(args.model_weight_file)
        num_classes = weights.num_classes(sds[0], args.model_weight_file)
    return test_split, train_split, num_classes


def open_metrics(args, dist, resume):
    """The run's metrics file (rank 0 writes), continued after the resumed step."""
    return MetricsFile(os.path.join(args.exp_dir, METRICS_NAME), enabled=dist.is_main,
                       resume_step=resume[weights.META_KEY]["global_step"] if resume else None,
                       resume_epoch=resume["ep"] if resume else None, tensorboard_dir=args.tensorboard)


def build_optimizers(models, precision, args, device):
    """Adam per model (upstream: weight decay 5e-4), through apex/AMP; (models, optimizers)."""
    fused = {"fused": True} if device.type == "cuda" else {"foreach": True}
    optimizers = [torch.optim.Adam(m.parameters(), lr=args.base_lr, weight_decay=5e-4, **fused) for m in models]
    pairs = [precision.initialize(m, o) for m, o in zip(models, optimizers)]
    return [m for m, _ in pairs], [o for _, o in pairs]


def wrap_ddp(models, dist, args):
    # local branch / fc get no gradient unless their losses are on
    unused = not (args.llw > 0 and args.idlw > 0)
    return [distributed.wrap_ddp(m, dist, broadcast_buffers=False, find_unused_parameters=unused) for m in models]


def log_setup(log, args, seed, device, precision, dist, batches, warmup):
    # no word of this line may be 'FPS': the Ascend CI greps 'FPS' for the epoch lines' field 5
    log(f"seed {seed}; device {device}; precision {precision.mode}; channels_last {args.channels_last}; "
        f"batch {args.batch_size} images per device ({args.ids_per_batch} ids x {args.ims_per_id} images) x "
        f"{dist.world_size} rank(s) = {args.batch_size * dist.world_size} images per step; "
        f"{len(batches.sampler.ids)} ids, {len(batches)} steps per epoch; {args.num_models} model(s); the epoch "
        f"throughput excludes the first {warmup} steps of each epoch")


def epoch_losses(r):
    """The metrics-file losses of an epoch result (none when it ran no step)."""
    return loss_values(r.means[0], r.means[1:]) if r and r.n_steps else {}


def log_end_of_training(log, meter, dist, warmup, ckpt_path):
    if meter.fps is not None:
        # not 'FPS': that word is for the epoch lines only (the Ascend CI averages their field 5)
        log(f"[all ranks] steady-state throughput of the run: {meter.fps:.3f} images/sec over "
            f"{dist.world_size} rank(s), first {warmup} steps of each epoch excluded")
    log(f"checkpoint: {os.path.abspath(ckpt_path)}")


def test_only(model, test_split, device, precision, args, dist, log):
    """--only_test: rank 0 tests the model and reports; nothing is trained or written."""
    if dist.is_main:
        evaluate_model.report(evaluate_model.run_test(model, test_split, device, precision, args, log), log)
    distributed.cleanup(dist)


@main_guard
def main(argv=None):
    args = get_parser().parse_args(argv)
    check_args(args, distributed.env_world()[1])
    dist = distributed.init(requested_device=args.device,
                            device_id=args.npu if args.npu is not None else args.device_id)
    log = console = open_console(args, dist.is_main)
    device = dist.device
    require_tensorboard(args.tensorboard)

    # resume, seed
    ckpt_path = os.path.join(args.exp_dir, weights.CKPT_NAME)
    resume, resume_path = find_resume(args, ckpt_path, dist.is_main, log)
    seed = run_seed(args, resume)
    checkpoint.seed_everything(seed)

    # data, models
    test_split, train_split, num_classes = read_data(args)
    # once the data is read (a bad data file leaves the run folder as it was)
    metrics = None if args.only_test else open_metrics(args, dist, resume)
    models = build_models(args, num_classes, device, log)
    precision = amp.from_args(args, device)
    if args.only_test:
        return test_only(models[0], test_split, device, precision, args, dist, log)

    # optimizers, resume, DDP, batches, losses
    models, optimizers = build_optimizers(models, precision, args, device)
    start_epoch, start_batch, global_step = restore(resume, resume_path, models, optimizers, precision, args, log)
    ddps = wrap_ddp(models, dist, args)
    batches = TrainBatches(train_split, args, seed, dist, device, log)
    triplets = losses.TripletLoss(args.global_margin), losses.TripletLoss(args.local_margin)
    warmup = min(args.fps_warmup_steps, max(len(batches) - 1, 0))
    meter = FpsMeter(args.batch_size * dist.world_size, warmup)
    log_setup(log, args, seed, device, precision, dist, batches, warmup)

    # the epochs: train, record, checkpoint
    complete, r = start_epoch > args.total_epochs, None
    for epoch in range(start_epoch, args.total_epochs + 1):
        set_epoch_lr(optimizers, args, epoch, log)
        r = train_one_epoch(epoch, start_batch if epoch == start_epoch else 0, ddps, optimizers, precision, batches,
                            triplets, meter, global_step, args, dist, device, console, metrics, ckpt_path)
        global_step = r.global_step
        finished_epoch = not r.stopped or r.step >= len(batches)
        complete = finished_epoch and epoch == args.total_epochs
        if finished_epoch and not complete:  # the last epoch's row follows the test, with its scores
            # before the checkpoint: a crash between the two replays the epoch, and its row is dropped
            metrics.epoch(epoch, global_step, lr=optimizers[0].param_groups[0]["lr"], images_per_sec=r.fps,
                          losses=epoch_losses(r))
        if dist.is_main:
            save_checkpoint(ckpt_path, ddps, optimizers, precision, args, seed,
                            epoch if finished_epoch else epoch - 1, 0 if finished_epoch else r.step, global_step)
        if r.stopped:
            log(f"stopped after --max_steps {args.max_steps} optimizer steps")
            break
    log_end_of_training(log, meter, dist, warmup, ckpt_path)

    # the final test
    if not complete:
        log("final test skipped: training was stopped by --max_steps before the last epoch ended")
    else:
        scores = final_test(models, ddps, test_split, device, precision, args, dist, log)
        if scores is not None:
            # after a restart that found the training complete, the last epoch's losses are not known again
            metrics.epoch(args.total_epochs, global_step, lr=optimizers[0].param_groups[0]["lr"],
                          images_per_sec=r.fps if r else None, losses=epoch_losses(r), metrics=metric_values(scores))
    metrics.close()
    distributed.cleanup(dist)


if __name__ == "__main__":
    main()
