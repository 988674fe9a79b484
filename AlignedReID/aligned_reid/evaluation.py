"""Market-1501 evaluation: distances, CMC, mAP and the upstream eval() sequence.

CMC follows open-reid's Market setting (first match break, top 10; gallery entries with the
query's id AND camera are dropped, distractors kept). AP is the trapezoidal area under the
precision-recall curve of scikit-learn 0.18.1 that upstream required (= the official
Market-1501 MATLAB AP); 'step' gives the sklearn >= 0.19 value the Ascend port reports.
Everything works on query chunks, so memory stays bounded for 3,368 x 15,913.
"""
import time
from contextlib import contextmanager

import numpy as np
import torch

from .losses import local_dist, normalize
from .re_ranking import re_ranking


@contextmanager
def measure_time(message: str, verbose: bool = True):
    if verbose:
        print(message, flush=True)
    t0 = time.time()
    yield
    if verbose:
        print(f"Done, {time.time() - t0:.2f}s", flush=True)


def compute_dist(x, y, chunk: int = 4096) -> np.ndarray:
    """Euclidean [m,n] float32 from [m,d], [n,d]; negative squares set to 0 before sqrt."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    yy = y.pow(2).sum(1).unsqueeze(0)
    out = np.empty((x.shape[0], y.shape[0]), dtype=np.float32)
    for a in range(0, x.shape[0], chunk):
        xb = x[a:a + chunk]
        sq = xb.pow(2).sum(1, keepdim=True) + yy - 2.0 * xb @ y.t()
        out[a:a + chunk] = sq.clamp_(min=0).sqrt_().numpy()
    return out


def compute_local_dist(x, y, block: int = 200) -> np.ndarray:
    """Aligned local distance [m,n] from stripes [m,H,C], [n,H,C], in blocks of `block` x `block`."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    out = np.empty((x.shape[0], y.shape[0]), dtype=np.float32)
    with torch.no_grad():
        for a in range(0, x.shape[0], block):
            for b in range(0, y.shape[0], block):
                out[a:a + block, b:b + block] = local_dist(x[a:a + block], y[b:b + block]).numpy()
    return out


def cmc_map(dist, q_ids, g_ids, q_cams, g_cams, topk: int = 10, ap: str = "trapezoid", chunk: int = 128):
    """(mAP, cmc[topk]) over queries with at least one valid match. Vectorised per query chunk."""
    if ap not in ("trapezoid", "step"):
        raise ValueError(f"ap must be 'trapezoid' or 'step', got {ap}")
    dist = torch.as_tensor(np.asarray(dist), dtype=torch.float32)
    q_ids, g_ids = torch.as_tensor(np.asarray(q_ids)), torch.as_tensor(np.asarray(g_ids))
    q_cams, g_cams = torch.as_tensor(np.asarray(q_cams)), torch.as_tensor(np.asarray(g_cams))
    n_g = dist.shape[1]
    ranks = torch.arange(1, n_g + 1, dtype=torch.float64)
    positions = torch.arange(n_g)
    hits = torch.zeros(topk, dtype=torch.float64)
    ap_sum, n_valid = 0.0, 0
    for a in range(0, dist.shape[0], chunk):
        qi, qc = q_ids[a:a + chunk, None], q_cams[a:a + chunk, None]
        # same id and same camera leaves the ranking: give it +inf so it sorts behind every valid entry
        d = dist[a:a + chunk].masked_fill((g_ids[None] == qi) & (g_cams[None] == qc), float("inf"))
        sd, order = torch.sort(d, dim=1, stable=True)
        valid = torch.isfinite(sd)
        match = (g_ids[order] == qi) & valid
        n_good = match.sum(1)
        has = n_good > 0
        if not bool(has.any()):
            continue
        first = torch.where(match, positions, n_g).min(1).values[has]
        hits += torch.bincount(first[first < topk], minlength=topk)[:topk].double()
        tp = match.double().cumsum(1)
        # thresholds end where the next distance differs: tied scores form one PR point, as in sklearn
        end = valid.clone()
        end[:, :-1] &= sd[:, 1:] != sd[:, :-1]
        prec = tp / ranks
        last_end = torch.cummax(torch.where(end, positions, -1), dim=1).values
        prev_end = torch.cat([torch.full_like(last_end[:, :1], -1), last_end[:, :-1]], 1)
        prev_tp = torch.where(prev_end >= 0, tp.gather(1, prev_end.clamp(min=0)), 0.0)
        gain = torch.where(end, tp - prev_tp, 0.0)
        if ap == "trapezoid":
            prev_prec = torch.where(prev_end >= 0, prec.gather(1, prev_end.clamp(min=0)), 1.0)
            area = gain * (prec + prev_prec) / 2
        else:
            area = gain * prec
        ap_sum += float((area.sum(1)[has] / n_good[has]).sum())
        n_valid += int(has.sum())
    if n_valid == 0:
        return 0.0, np.zeros(topk)
    return ap_sum / n_valid, (hits.cumsum(0) / n_valid).numpy()


def format_scores(mAP: float, cmc) -> str:
    return f"[mAP: {mAP:5.2%}], [cmc1: {cmc[0]:5.2%}], [cmc5: {cmc[4]:5.2%}], [cmc10: {cmc[9]:5.2%}]"


def evaluate(global_feat, local_feat, ids, cams, marks, normalize_feature: bool, use_local_distance: bool,
             to_re_rank: bool = True, ap: str = "trapezoid", verbose: bool = True):
    """Upstream's eval() order: global, re-ranked global; with local distance also local,
    re-ranked local, global+local and re-ranked global+local. Prints one metric line per step
    and returns [(name, mAP, cmc)] in that order. Multi-query (mark 2) features are unused."""
    if normalize_feature:
        global_feat = normalize(torch.as_tensor(global_feat), axis=1).numpy()
        if local_feat is not None:
            local_feat = normalize(torch.as_tensor(local_feat), axis=-1).numpy()
    q, g = marks == 0, marks == 1
    ids_cams = (ids[q], ids[g], cams[q], cams[g])
    results = []

    def score(name, d):
        with measure_time(f"Computing scores for {name}...", verbose):
            mAP, cmc = cmc_map(d, *ids_cams, ap=ap)
        print(format_scores(mAP, cmc), flush=True)
        results.append((name, mAP, cmc))

    def rerank(name, q_g, q_q, g_g):
        with measure_time(f"Re-ranking {name}...", verbose):
            d = re_ranking(q_g, q_q, g_g)
        score(f"Re-ranked {name}", d)

    with measure_time("Computing global distance...", verbose):
        g_q_g = compute_dist(global_feat[q], global_feat[g])
    score("Global Distance", g_q_g)
    g_q_q = g_g_g = None
    if to_re_rank:
        with measure_time("Computing global q-q and g-g distances...", verbose):
            g_q_q = compute_dist(global_feat[q], global_feat[q])
            g_g_g = compute_dist(global_feat[g], global_feat[g])
        rerank("Global Distance", g_q_g, g_q_q, g_g_g)
    if use_local_distance and local_feat is not None:
        with measure_time("Computing local distance...", verbose):
            l_q_g = compute_local_dist(local_feat[q], local_feat[g])
        score("Local Distance", l_q_g)
        if to_re_rank:
            with measure_time("Computing local q-q and g-g distances...", verbose):
                l_q_q = compute_local_dist(local_feat[q], local_feat[q])
                l_g_g = compute_local_dist(local_feat[g], local_feat[g])
            rerank("Local Distance", l_q_g, l_q_q, l_g_g)
        score("Global+Local Distance", g_q_g + l_q_g)
        if to_re_rank:
            l_q_q += g_q_q
            l_g_g += g_g_g
            rerank("Global+Local Distance", g_q_g + l_q_g, l_q_q, l_g_g)
    return results
