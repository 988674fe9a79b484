"""Chance levels of MultiTaskNet's metrics on a VeRi folder, to read the demo's figures against.

    python PAMTRI/tools/chance.py ROOT        (ROOT = MultiTaskNet --root, holding veri/)

mAP and Rank-1: expected value for a random ranking of the gallery, under the evaluation's junk
rule (Monte Carlo over 200 random distance matrices). Colour/type: the share of the most frequent
class among query + gallery (the best constant guess), ground truth through the train maps.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))           # repo root: common/
sys.path.insert(0, str(HERE.parent / "MultiTaskNet"))

import numpy as np
import torch
from multitasknet.evaluation import evaluate_rank
from multitasknet.veri import VeRi, map_attributes


def chance_levels(root, draws=200, seed=0):
    v = VeRi(str(root), verbose=False)
    q, g = v.query, v.gallery
    gen = torch.Generator().manual_seed(seed)
    maps, rank1 = [], []
    for _ in range(draws):
        cmc, m, _ = evaluate_rank(torch.rand(len(q), len(g), generator=gen), q.vids, g.vids, q.camids, g.camids)
        maps.append(m)
        rank1.append(cmc[0])
    out = {"mAP": float(np.mean(maps)), "Rank-1": float(np.mean(rank1))}
    for name, values, mapping in (("colour", "colors", v.color_map), ("type", "types", v.type_map)):
        truth = map_attributes(np.concatenate([getattr(q, values), getattr(g, values)]), mapping)
        out[name] = float(np.bincount(truth[truth >= 0]).max() / len(truth)) if (truth >= 0).any() else 0.0
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python tools/chance.py ROOT")
    c = chance_levels(argv[0])
    print("chance: mAP {:.2%}, Rank-1 {:.2%}, colour {:.2%}, type {:.2%}".format(
        c["mAP"], c["Rank-1"], c["colour"], c["type"]))


if __name__ == "__main__":
    main()
