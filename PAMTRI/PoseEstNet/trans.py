"""The trans step: run PoseEstNet over VeRi and write MultiTaskNet's extra inputs.

    python trans.py --cfg experiments/veri/hrnet/w32_256x256_adam_lr1e-3.yaml --ckpt_path model_best.pth \
        --data_dir data/veri

For each split (default test, query, train) the images listed in DATA_DIR/label_<split>.csv
(4 columns name,vid,color,type or the full 112) are read from DATA_DIR/image_<split>/ and
DATA_DIR gets:
  heatmap_<split>/<stem>/00.jpg..35.jpg   flip-averaged heatmaps x255 as uint8 JPEG, in the frame of
                                          the centred 1.25*max(w,h) square at heatmap size
  segment_<split>/<stem>/00.jpg..12.jpg   filled keypoint quads (strictly convex only), image frame
                                          squashed to 64x64
  pose_<split>.csv                        name,x0,y0,c0,...,x35,y35,c35 (109 columns, %.3f)
  label_<split>.csv                       name,vid,color,type + the same 108 values (112 columns);
                                          the previous file is kept once as label_<split>.csv.orig

A corrupt or truncated image stops the run with its path; with --skip_bad_images it is skipped,
named and counted, and left out of pose_<split>.csv and label_<split>.csv (MultiTaskNet then
does not see it).
"""
import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from poseestnet import flags, multitask_io
from poseestnet.config import load_config
from poseestnet.inference import forward_flip_test, get_final_preds
from poseestnet.pose_hrnet import get_pose_net
from poseestnet.segments import segment_masks
from poseestnet.veri import WholeImages
from poseestnet.weights import load_pose_weights

from common import amp
from common.checkpoint import clean_stale_temps
from common.cli import nonneg_int, positive_int
from common.data import loader_kwargs, skip_none_collate
from common.device import select_device
from common.errors import UserError, main_guard

MAX_PENDING = 512  # images whose JPEGs are queued for writing


def get_args(argv=None):
    p = flags.new_parser(__doc__)
    p.add_argument("--ckpt_path", default="", help="PoseEstNet weights (default TEST.MODEL_FILE)")
    p.add_argument("--data_dir", required=True, help="MultiTaskNet VeRi folder (<root>/veri) or its parent")
    p.add_argument("--output_dir", default=None, help="where to write (default: DATA_DIR)")
    p.add_argument("--splits", nargs="+", default=["test", "query", "train"], choices=["train", "query", "test"])
    p.add_argument("--batch_size", type=positive_int, default=None, help="default TEST.BATCH_SIZE_PER_GPU")
    p.add_argument("--workers", type=nonneg_int, default=None, help="default WORKERS")
    p.add_argument("--write_threads", type=positive_int, default=4, help="threads writing the JPEG files")
    flags.add_bool(p, "--skip_bad_images", default=False,
                   help="skip unreadable/truncated images (named, counted, left out of the written CSVs) "
                        "instead of stopping")
    return flags.parse_args(p, argv)


def trans_split(cfg, model, device, veri, out_dir, split, batch_size, workers, pool, precision, log=print,
                skip=False):
    labels = multitask_io.read_labels(os.path.join(veri, f"label_{split}.csv"))
    image_dir = os.path.join(veri, f"image_{split}")
    if not os.path.isdir(image_dir):
        raise UserError(f"image folder not found: {image_dir}")
    paths = [os.path.join(image_dir, name) for name, *_ in labels]
    missing = [q for q in paths if not os.path.isfile(q)]
    if missing:
        raise UserError(f"{len(missing)} images of label_{split}.csv missing from {image_dir}, e.g. {missing[0]}")
    heat_dir = os.path.join(out_dir, f"heatmap_{split}")
    seg_dir = os.path.join(out_dir, f"segment_{split}")
    loader = torch.utils.data.DataLoader(WholeImages(paths, cfg.MODEL.IMAGE_SIZE, cfg.DATASET.COLOR_RGB, skip),
                                         batch_size=batch_size, shuffle=False, collate_fn=skip_none_collate,
                                         **loader_kwargs(workers, device))
    keypoints, sizes, kept, pending = [], [], [], deque()

    def submit(fn, *a):
        pending.append(pool.submit(fn, *a))
        while len(pending) > MAX_PENDING:  # bound the maps held in memory when the disk is slower
            pending.popleft().result()

    t0 = time.time()
    with torch.no_grad():
        for batch in loader:
            if batch is None:
                continue
            images, centers, scales, wh, index = batch
            with precision.autocast():
                out = forward_flip_test(model, images.to(device), cfg.TEST.FLIP_TEST, cfg.TEST.SHIFT_HEATMAP)
            out = out.float().cpu().numpy()
            preds, maxvals = get_final_preds(out, centers.numpy(), scales.numpy(), cfg.TEST.POST_PROCESS)
            maps = multitask_io.heatmaps_to_u8(out)
            for b in range(len(images)):
                k = int(index[b])
                kept.append(k)
                keypoints.append(multitask_io.format_keypoints(preds[b], maxvals[b]))
                sizes.append((int(wh[b, 0]), int(wh[b, 1])))
                submit(multitask_io.write_channel_folder, os.path.join(heat_dir, multitask_io.stem(labels[k][0])),
                       maps[b].copy())
    if len(kept) < len(labels):
        log(f"--skip_bad_images: {len(labels) - len(kept)} of {len(labels)} {split} image(s) skipped (each named "
            f"above); left out of pose_{split}.csv and label_{split}.csv")
    if not kept:
        raise UserError(f"no {split} image could be read (all skipped by --skip_bad_images)")
    labels = [labels[k] for k in kept]
    names = [row[0] for row in labels]
    multitask_io.write_pose_csv(os.path.join(out_dir, f"pose_{split}.csv"), names, keypoints)
    for name, kp, (w, h) in zip(names, keypoints, sizes):
        # segments use the values exactly as written to the pose CSV
        xy = [(float(kp[3 * j]), float(kp[3 * j + 1])) for j in range(36)]
        submit(multitask_io.write_channel_folder, os.path.join(seg_dir, multitask_io.stem(name)),
               segment_masks(xy, w, h))
    for f in pending:
        f.result()
    multitask_io.write_label_csv(os.path.join(out_dir, f"label_{split}.csv"), labels, keypoints)
    log(f"=> {split}: {len(names)} images -> {heat_dir}, {seg_dir}, pose_{split}.csv, label_{split}.csv "
        f"({len(names) / max(time.time() - t0, 1e-9):.1f} images/s)")
    return len(names)


@main_guard
def main(argv=None):
    args = get_args(argv)
    cfg = load_config(args.cfg, list(args.opts))
    veri = multitask_io.resolve_veri_dir(args.data_dir)
    out_dir = args.output_dir or veri
    os.makedirs(out_dir, exist_ok=True)
    clean_stale_temps(out_dir)  # temporaries of a CSV write that crashed in an earlier run
    device = select_device(flags.requested_device(args), args.device_id)
    model = get_pose_net(cfg)
    load_pose_weights(model, args.ckpt_path or cfg.TEST.MODEL_FILE)
    model = model.to(device).eval()
    precision = amp.from_args(args, device)
    batch = args.batch_size or cfg.TEST.BATCH_SIZE_PER_GPU
    workers = cfg.WORKERS if args.workers is None else args.workers
    print(f"=> trans: {veri} -> {out_dir}, splits {' '.join(args.splits)}, device {device}, batch {batch}, "
          f"flip test {cfg.TEST.FLIP_TEST}", flush=True)
    with ThreadPoolExecutor(max(1, args.write_threads)) as pool:
        for split in args.splits:
            trans_split(cfg, model, device, veri, out_dir, split, batch, workers, pool, precision,
                        skip=args.skip_bad_images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
