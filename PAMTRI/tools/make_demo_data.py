"""Demo VeRi for PAMTRI, in the raw layout a user assembles (VeRi images + NVlabs label CSVs),
then (unless --raw_only) the PoseEstNet chain that turns it into MultiTaskNet input.

    python PAMTRI/tools/make_demo_data.py OUT [--seed 0] [--raw_only]

Raw part (seconds):
  OUT/veri/image_{train,query,test}/<vid>_c<cam>_<frame>_<k>.jpg   (query files also in image_test)
  OUT/veri/label_{train,query,test}.csv   112 columns name,vid,color,type,x0,y0,c0,...,x35,y35,c35
                                          (here: the drawn keypoints, c = 1 visible / 0 hidden)
  OUT/annot/label_{train,test}.csv        PoseEstNet annotations, 111 columns
                                          name,width,height,x0,y0,v0,...  (images from image_train,
                                          disjoint ids, as upstream)
Chain: PoseEstNet/tools/create_dataset.py -> OUT/pose/{images,annot}; a short PoseEstNet
training (experiments/veri/hrnet/demo_tiny.yaml); trans.py over OUT/veri, which writes
heatmap_*/, segment_*/, pose_*.csv and rewrites label_*.csv with the predicted keypoints.
The last line printed is the MultiTaskNet --root (OUT; the data is in OUT/veri/).

Every image is a rendered vehicle: a box body and a cabin seen from the camera's viewpoint.
The labels are in the pixels: body colour = colour id, proportions = type id, a side stripe
colour and a roof code = vehicle id, background/viewpoint = camera. The 36 keypoints are the
projected corners, wheel centres and wheel-arch points of that drawing. Colours and types come
from a subset of VeRi's classes with at least --vehicles_per_class (4) training vehicles each, and
query/test vehicles only take classes present in training, so colour/type accuracy measures what
the heads learnt (with 24 train ids: 6 colours, 6 types).
"""
import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
POSE_DIR = HERE.parent / "PoseEstNet"

COLORS = {  # VeRi colour ids 1..10 (RGB)
    1: (230, 200, 30), 2: (240, 130, 20), 3: (40, 150, 60), 4: (128, 128, 128), 5: (200, 30, 30),
    6: (30, 70, 190), 7: (235, 235, 235), 8: (200, 165, 80), 9: (120, 70, 30), 10: (25, 25, 25)}
ACCENTS = [(250, 250, 250), (10, 10, 10), (255, 0, 0), (0, 220, 220), (230, 0, 230), (120, 255, 0)]
GLASS = (45, 65, 105)
# VeRi type ids 1..9: sedan, suv, van, hatchback, mpv, pickup, bus, truck, estate.
# length, width, body height, clearance, cabin height, cabin base front/back x, cabin top insets
TYPES = {
    1: dict(L=1.00, W=.42, Hb=.22, zb=.06, Hc=.17, xf=.18, xb=-.28, df=.12, db=.10),
    2: dict(L=.95, W=.45, Hb=.30, zb=.10, Hc=.20, xf=.25, xb=-.44, df=.08, db=.03),
    3: dict(L=1.00, W=.45, Hb=.34, zb=.07, Hc=.25, xf=.38, xb=-.49, df=.10, db=.00),
    4: dict(L=.85, W=.42, Hb=.23, zb=.06, Hc=.18, xf=.14, xb=-.39, df=.12, db=.07),
    5: dict(L=.95, W=.44, Hb=.28, zb=.07, Hc=.22, xf=.30, xb=-.46, df=.15, db=.02),
    6: dict(L=1.05, W=.45, Hb=.26, zb=.11, Hc=.20, xf=.24, xb=-.06, df=.08, db=.00),
    7: dict(L=1.30, W=.45, Hb=.40, zb=.07, Hc=.18, xf=.62, xb=-.64, df=.02, db=.00),
    8: dict(L=1.20, W=.47, Hb=.36, zb=.12, Hc=.22, xf=.56, xb=.22, df=.03, db=.00),
    9: dict(L=1.00, W=.42, Hb=.22, zb=.06, Hc=.17, xf=.18, xb=-.47, df=.12, db=.02),
}
NUM_JOINTS = 36


def car_model(t):
    """3D keypoints (36, 3) and faces of one vehicle type. x forward, y left, z up."""
    p = TYPES[t]
    L, W, Hb, zb, Hc = p["L"], p["W"], p["Hb"], p["zb"], p["Hc"]
    xf, xb, df, db = p["xf"], p["xb"], p["df"], p["db"]
    zt = zb + Hb
    r = 0.085 * L if t != 7 else 0.07 * L
    xw = (L / 2 - 0.2 * L, -L / 2 + 0.2 * L)
    zc = zb + 0.01
    wc = 0.45 * W
    side = []
    for s in (+1, -1):  # left side first (0..17), then the right side (18..35)
        y, yc = s * W / 2, s * wc
        kp = np.zeros((18, 3))
        kp[0] = (xw[0], y, zc)
        kp[1] = (xw[1], y, zc)
        kp[2], kp[3], kp[4] = (xw[0] + r, y, zb), (xw[0], y, zc + r), (xw[0] - r, y, zb)
        kp[7], kp[8], kp[9] = (xw[1] + r, y, zb), (xw[1], y, zc + r), (xw[1] - r, y, zb)
        kp[5], kp[6] = (xf, y, zb), (xb, y, zb)
        kp[10], kp[11] = (-L / 2, y, zb), (-L / 2, y, zt)
        kp[12], kp[13] = (xb, yc, zt), (xb + db, yc, zt + Hc)
        kp[14], kp[15] = (xf - df, yc, zt + Hc), (xf, yc, zt)
        kp[16], kp[17] = (L / 2, y, zt), (L / 2, y, zb)
        side.append(kp)
    kps = np.concatenate(side)
    box = lambda xs, ys, zs: np.array([(x, y, z) for x in xs for y in ys for z in zs])  # noqa: E731
    b = box((L / 2, -L / 2), (W / 2, -W / 2), (zb, zt))  # index = 4*ix + 2*iy + iz
    faces = {  # name: (corner points, outward normal)
        "left": (b[[0, 4, 5, 1]], (0, 1, 0)), "right": (b[[2, 3, 7, 6]], (0, -1, 0)),
        "front": (b[[0, 1, 3, 2]], (1, 0, 0)), "back": (b[[4, 6, 7, 5]], (-1, 0, 0)),
        "top": (b[[1, 5, 7, 3]], (0, 0, 1)),
        "windshield": (kps[[15, 14, 32, 33]], (Hc, 0, df + 1e-3)),
        "rear_window": (kps[[12, 30, 31, 13]], (-Hc, 0, db + 1e-3)),
        "roof": (kps[[13, 31, 32, 14]], (0, 0, 1)),
        "cabin_left": (kps[[12, 13, 14, 15]], (0, 1, 0)), "cabin_right": (kps[[30, 33, 32, 31]], (0, -1, 0)),
    }
    wheels = [(xw[k], s * W / 2, zc, r) for s in (+1, -1) for k in (0, 1)]
    # faces each keypoint lies on: it is visible when one of them faces the camera
    on = {0: ["left"], 1: ["left"], 10: ["left", "back"], 11: ["left", "back", "top"], 12: ["top", "rear_window"],
          13: ["rear_window", "roof"], 14: ["roof", "windshield"], 15: ["top", "windshield"],
          16: ["left", "front", "top"], 17: ["left", "front"]}
    incident = []
    for name in ("left", "right"):
        for k in range(18):
            incident.append([f.replace("left", name) for f in on.get(k, ["left"])])
    return kps, faces, wheels, incident, p


def view_matrix(yaw_deg, elev_deg):
    """Rows: screen right, screen up, viewing direction (camera -> scene)."""
    a, e = math.radians(yaw_deg), math.radians(elev_deg)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    cam = np.array([[1, 0, 0], [0, math.sin(e), math.cos(e)], [0, math.cos(e), -math.sin(e)]])
    return cam @ rz


def shade(color, normal, view, light=np.array([0.3, 0.5, 0.8])):
    n = np.asarray(normal, float)
    n = n / np.linalg.norm(n)
    k = 0.55 + 0.45 * max(0.0, float(n @ (light / np.linalg.norm(light))))
    return tuple(int(min(255, c * k)) for c in color)


def render(rng, vehicle, cam, size_long):
    """-> RGB uint8 image, keypoints (36, 2) in pixels, visibility (36,) int."""
    kps, faces, wheels, incident, p = car_model(vehicle["type"])
    yaw = cam["yaw"] + rng.uniform(-15, 15)
    elev = cam["elev"] + rng.uniform(-4, 4)
    m = view_matrix(yaw, elev)
    corners = np.concatenate([f[0] for f in faces.values()])
    proj = lambda pts: np.asarray(pts) @ m[:2].T * np.array([1, -1])  # noqa: E731  (image y grows down)
    lo, hi = proj(corners).min(0), proj(corners).max(0)
    lo[1] -= 0.02
    ext = hi - lo
    scale = size_long / ext.max()
    margin = rng.uniform(0.03, 0.08, 2) * size_long
    w, h = (ext * scale + 2 * margin).astype(int) + 1
    off = margin - lo * scale + rng.uniform(-0.02, 0.02, 2) * size_long
    to_px = lambda pts: proj(pts) * scale + off  # noqa: E731
    depth = lambda pts: float(np.mean(np.asarray(pts) @ m[2]))  # noqa: E731

    img = np.empty((h, w, 3), np.float32)
    img[:] = cam["bg"]
    yy, xx = np.mgrid[0:h, 0:w]
    lane = (np.abs((xx * cam["lane"][0] + yy * cam["lane"][1]) % 40 - 20) < 2.5)
    img[lane] = cam["lane_color"]
    img += rng.normal(0, 10, (h, w, 1))

    visible = {name: float(np.asarray(n, float) @ m[2]) < -1e-6 for name, (_, n) in faces.items()}
    body = vehicle["color"]
    sub = 16  # fixed-point vertices for sub-pixel polygons

    def poly(pts_px, color):
        pts = np.round(np.asarray(pts_px) * sub).astype(np.int32)
        cv2.fillPoly(img, [pts], color, lineType=cv2.LINE_AA, shift=4)

    def circle3d(cx, cy, cz, r, n=20):
        ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return to_px(np.stack([cx + r * np.cos(ang), np.full(n, cy), cz + r * np.sin(ang)], 1))

    for cx, cy, cz, r in wheels:  # far wheels first; near ones are redrawn over the body
        poly(circle3d(cx, cy, cz, r), (15, 15, 15))
    order = sorted((n for n in ("left", "right", "front", "back", "top") if visible[n]),
                   key=lambda n: -depth(faces[n][0]))
    for name in order:
        pts, normal = faces[name]
        poly(to_px(pts), shade(body, normal, m[2]))
        if name in ("left", "right"):
            s = 1 if name == "left" else -1
            L, W, zb, Hb = p["L"], p["W"], p["zb"], p["Hb"]
            z0, z1 = zb + 0.45 * Hb, zb + 0.62 * Hb  # the id stripe
            poly(to_px([(L / 2 - .02, s * W / 2, z0), (-L / 2 + .02, s * W / 2, z0),
                        (-L / 2 + .02, s * W / 2, z1), (L / 2 - .02, s * W / 2, z1)]), vehicle["accent"])
            for x in (p["xf"], p["xb"]):  # door seams: mark keypoints 5/6 (23/24) on the sill
                poly(to_px([(x - .008, s * W / 2, zb), (x + .008, s * W / 2, zb),
                            (x + .008, s * W / 2, zb + Hb), (x - .008, s * W / 2, zb + Hb)]), (20, 20, 20))
            for cx, cy, cz, r in wheels:
                if np.sign(cy) == s:
                    poly(circle3d(cx, cy, cz, r), (15, 15, 15))
                    poly(circle3d(cx, cy + s * 1e-3, cz, r * 0.45), (200, 200, 200))
        if name in ("front", "back"):
            x = p["L"] / 2 * (1 if name == "front" else -1)
            zt = p["zb"] + p["Hb"]
            lamp = (255, 245, 170) if name == "front" else (255, 40, 40)
            for s in (1, -1):
                y0, y1 = s * (p["W"] / 2 - .015), s * (p["W"] / 2 - .10)
                poly(to_px([(x, y0, zt - .015), (x, y1, zt - .015), (x, y1, zt - .07), (x, y0, zt - .07)]), lamp)
            poly(to_px([(x, .06, p["zb"] + .03), (x, -.06, p["zb"] + .03), (x, -.06, p["zb"] + .08),
                        (x, .06, p["zb"] + .08)]), (240, 240, 240))
    cab = sorted((n for n in ("cabin_left", "cabin_right", "windshield", "rear_window", "roof") if visible[n]),
                 key=lambda n: -depth(faces[n][0]))
    for name in cab:
        pts, normal = faces[name]
        color = GLASS if name in ("windshield", "rear_window") else shade(body, normal, m[2])
        poly(to_px(pts), color)
        if name == "roof":  # id code: 4 squares, filled where the bit is set
            a, b_, c_, d = pts  # 13, 31, 32, 14
            for k in range(4):
                if vehicle["code"] >> k & 1:
                    t0, t1 = 0.15 + 0.18 * k, 0.29 + 0.18 * k
                    q = [a + (d - a) * t0 + (b_ - a) * .25, a + (d - a) * t1 + (b_ - a) * .25,
                         a + (d - a) * t1 + (b_ - a) * .75, a + (d - a) * t0 + (b_ - a) * .75]
                    poly(to_px(q), vehicle["accent"])
        if name in ("cabin_left", "cabin_right"):
            a, b_, c_, d = pts  # window inset
            ctr = (a + b_ + c_ + d) / 4
            poly(to_px([ctr + (v - ctr) * 0.78 for v in pts]), GLASS)

    img += rng.normal(0, 6, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    xy = to_px(kps)
    vis = np.array([any(visible[f] for f in incident[k]) for k in range(NUM_JOINTS)], dtype=np.int64)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
    return img, xy, vis * inside


def balanced(rng, values, n):
    """n draws that go through `values` in shuffled rounds: every value used about n/len(values) times."""
    out = []
    while len(out) < n:
        out.extend(int(v) for v in rng.permutation(values))
    return out[:n]


def make_vehicles(rng, train_vids, test_vids, per_class=4):
    """Colour, type and id marks (stripe colour + roof code) of every vehicle.

    Colour and type are drawn, in balanced rounds, from a subset of the VeRi classes small enough that
    each class has at least `per_class` training vehicles (VeRi has 10 colours and 9 types); test
    vehicles take only classes seen in training. Otherwise a test colour or type could be missing from
    label_train.csv and count as an error whatever the model does, and a class met on one or two
    training vehicles is learnt as those vehicles' identities rather than as a colour or a shape."""
    n_classes = max(1, len(train_vids) // max(1, per_class))
    colors = rng.choice(sorted(COLORS), min(len(COLORS), n_classes), replace=False)
    types = rng.choice(sorted(TYPES), min(len(TYPES), n_classes), replace=False)
    attrs = list(zip(balanced(rng, colors, len(train_vids)), balanced(rng, types, len(train_vids))))
    attrs += list(zip(balanced(rng, colors, len(test_vids)), balanced(rng, types, len(test_vids))))
    marks = [(a, code) for a in range(len(ACCENTS)) for code in range(1, 16)]
    order = rng.permutation(len(marks))
    used, k, out = set(), 0, {}
    for vid, (c, t) in zip(list(train_vids) + list(test_vids), attrs):
        for _ in marks:  # distinct marks while they last (90), then distinct (colour, type, marks)
            a, code = marks[order[k % len(marks)]]
            k += 1
            if (c, t, a, code) not in used:
                break
        else:
            raise SystemExit("Error: too many vehicle ids for the demo's colour/type/mark combinations")
        used.add((c, t, a, code))
        out[vid] = {"vid": vid, "color": c, "type": t, "accent": ACCENTS[a], "code": code, "color_rgb": COLORS[c]}
    return out


def make_cameras(rng, n):
    cams = {}
    for i, cam in enumerate(sorted(rng.choice(np.arange(1, 21), n, replace=False))):
        cams[int(cam)] = {"yaw": i * 360.0 / n + rng.uniform(-10, 10), "elev": rng.uniform(14, 32),
                          "bg": rng.uniform(60, 170, 3), "lane": rng.normal(0, 1, 2),
                          "lane_color": rng.uniform(150, 255, 3)}
    return cams


def write_raw(out, seed=0, train_ids=24, test_ids=12, cameras=6, cams_per_id=4, per_cam=3, size=(72, 112),
              per_class=4):
    rng = np.random.default_rng(seed)
    vids = sorted(int(v) for v in rng.choice(np.arange(1, 777), train_ids + test_ids, replace=False))
    test_vids = sorted(int(v) for v in rng.choice(vids, test_ids, replace=False))
    train_vids = [v for v in vids if v not in test_vids]
    vehicles = make_vehicles(rng, train_vids, test_vids, per_class)
    cams = make_cameras(rng, cameras)
    veri = os.path.join(out, "veri")
    rows = {"train": [], "test": [], "query": []}
    frame = 100
    for split, split_vids in (("train", train_vids), ("test", test_vids)):
        folder = os.path.join(veri, f"image_{split}")
        os.makedirs(folder, exist_ok=True)
        for vid in split_vids:
            v = vehicles[vid]
            draw = {"type": v["type"], "color": v["color_rgb"], "accent": v["accent"], "code": v["code"]}
            for cam in sorted(rng.choice(sorted(cams), cams_per_id, replace=False)):
                for k in range(per_cam):
                    frame += int(rng.integers(5, 400))
                    name = f"{vid:04d}_c{int(cam):03d}_{frame:08d}_{k}.jpg"
                    img, xy, vis = render(rng, draw, cams[int(cam)], rng.uniform(*size))
                    cv2.imwrite(os.path.join(folder, name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, 92])
                    row = (name, vid, v["color"], v["type"], xy, vis, img.shape[1], img.shape[0])
                    rows[split].append(row)
                    if split == "test" and k == 0:  # one query per (vehicle, camera), also in image_test
                        qdir = os.path.join(veri, "image_query")
                        os.makedirs(qdir, exist_ok=True)
                        cv2.imwrite(os.path.join(qdir, name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, 92])
                        rows["query"].append(row)
    for split, split_rows in rows.items():
        with open(os.path.join(veri, f"label_{split}.csv"), "w") as f:
            for name, vid, color, vtype, xy, vis, _, _ in sorted(split_rows, key=lambda r: r[0]):
                kp = ",".join("%.3f,%.3f,%.3f" % (x, y, float(c)) for (x, y), c in zip(xy, vis))
                f.write(f"{name},{vid},{color},{vtype},{kp}\n")
    # PoseEstNet annotations: images of image_train, disjoint vehicle ids for train and test
    annot = os.path.join(out, "annot")
    os.makedirs(annot, exist_ok=True)
    pose_test = set(train_vids[-max(1, len(train_vids) // 4):])
    for split in ("train", "test"):
        with open(os.path.join(annot, f"label_{split}.csv"), "w") as f:
            for name, vid, _, _, xy, vis, w, h in sorted(rows["train"], key=lambda r: r[0]):
                if (vid in pose_test) != (split == "test"):
                    continue
                xi = np.clip(np.round(xy), 0, [w - 1, h - 1]).astype(int)
                kp = ",".join(f"{x},{y},{c}" for (x, y), c in zip(xi, vis))
                f.write(f"{name},{w},{h},{kp}\n")
    return {k: len(v) for k, v in rows.items()}


def run(cmd, log_path, threads=1):
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    # one intra-op thread by default: deterministic results, and no spin-waiting on a busy machine
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    with open(log_path, "w") as log:
        proc = subprocess.run([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, env=env)
    with open(log_path) as log:
        lines = log.read().splitlines()
    if proc.returncode != 0:
        sys.stderr.write("\n".join(lines[-15:]) + "\n")
        sys.exit(f"Error: step failed (exit {proc.returncode}), log: {log_path}")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output folder (created)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train_ids", type=int, default=24)
    ap.add_argument("--test_ids", type=int, default=12)
    ap.add_argument("--cameras", type=int, default=6)
    ap.add_argument("--cams_per_id", type=int, default=4)
    ap.add_argument("--per_cam", type=int, default=3, help="images per vehicle and camera")
    ap.add_argument("--vehicles_per_class", type=int, default=4,
                    help="at least this many training vehicles per colour and per type (fewer classes than VeRi)")
    ap.add_argument("--raw_only", action="store_true", help="write the raw data only (no PoseEstNet chain)")
    ap.add_argument("--pose_cfg", default=str(POSE_DIR / "experiments/veri/hrnet/demo_tiny.yaml"))
    ap.add_argument("--pose_epochs", type=int, default=None, help="PoseEstNet epochs (default: the cfg's)")
    ap.add_argument("--pose_ckpt", default=None, help="use this PoseEstNet weights file instead of training one")
    ap.add_argument("--workers", type=int, default=1, help="data loader workers of the PoseEstNet steps")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the PoseEstNet steps")
    args = ap.parse_args(argv)
    if args.cams_per_id > args.cameras:
        sys.exit(f"Error: --cams_per_id {args.cams_per_id} exceeds --cameras {args.cameras}")
    out = os.path.abspath(args.out)
    t0 = time.time()
    counts = write_raw(out, args.seed, args.train_ids, args.test_ids, args.cameras, args.cams_per_id, args.per_cam,
                       per_class=args.vehicles_per_class)
    print(f"[demo] raw VeRi in {out}/veri: {counts['train']} train, {counts['test']} test, "
          f"{counts['query']} query images; PoseEstNet annotations in {out}/annot ({time.time() - t0:.1f}s)",
          flush=True)
    if not args.raw_only:
        py = sys.executable
        pose = os.path.join(out, "pose")
        os.makedirs(pose, exist_ok=True)
        run([py, POSE_DIR / "tools/create_dataset.py", "--veri", os.path.join(out, "veri"),
             "--annot", os.path.join(out, "annot"), "--PoseData", pose],
            os.path.join(pose, "create_dataset.log"), args.threads)
        ckpt = args.pose_ckpt
        if not ckpt:
            cmd = [py, POSE_DIR / "train.py", "--cfg", args.pose_cfg, "--data_dir", pose, "--val_freq", "5",
                   "--output_dir", os.path.join(pose, "output"), "--device", "cpu", "--seed", str(args.seed),
                   "--workers", str(args.workers), "--cache_images"]
            if args.pose_epochs:
                cmd += ["--epochs", str(args.pose_epochs)]
            lines = run(cmd, os.path.join(pose, "train.log"), args.threads)
            for line in lines:
                if line.startswith("| pose_hrnet") or line.startswith("| Arch") or line.startswith("FPS@all"):
                    print("[PoseEstNet] " + line, flush=True)
            name = os.path.splitext(os.path.basename(args.pose_cfg))[0]
            ckpt = os.path.join(pose, "output", "veri", "pose_hrnet", name, "final_state.pth")
        run([py, POSE_DIR / "trans.py", "--cfg", args.pose_cfg, "--ckpt_path", ckpt, "--data_dir",
             os.path.join(out, "veri"), "--device", "cpu", "--workers", str(args.workers)],
            os.path.join(pose, "trans.log"), args.threads)
        print(f"[demo] MultiTaskNet input written to {out}/veri ({time.time() - t0:.1f}s in all)", flush=True)
    print(out)


if __name__ == "__main__":
    main()
