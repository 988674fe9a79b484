"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) with bounded memory.

The usual implementation stacks the (q+g)^2 distance matrix, its argsort and a dense V of
the same size (about 6 GB for Market-1501). Here the stacked matrix is never built: rows are
read from the three blocks on demand, only the top k1+1 neighbours of each row are kept, and
V is sparse. The only full-size buffer is the [q, g] result.

Semantics (k1=20, k2=6, lambda=0.3 by default):
1. d = stacked squared distance, each column divided by its max, transposed.
2. R(i): the j in the top k1+1 of row i whose own top k1+1 contains i.
3. For each c in R(i), its reciprocal set with round(k1/2)+1 neighbours joins R(i) when more
   than 2/3 of it already lies in R(i).
4. V[i, R(i)] = exp(-d[i, R(i)]) normalised to sum 1; V[i] <- mean of V over the first k2
   neighbours of i (self included).
5. jaccard = 1 - s / (2 - s), s = sum_k min(V[q,k], V[g,k]); final = (1-lambda) jaccard + lambda d.
"""
import numpy as np
import scipy.sparse as sp
import torch


class _Stacked:
    """The stacked matrix [[q_q, q_g], [q_g^T, g_g]] without building it."""

    def __init__(self, q_g, q_q, g_g):
        self.q_g = np.ascontiguousarray(q_g, dtype=np.float32)
        self.q_q = np.ascontiguousarray(q_q, dtype=np.float32)
        self.g_g = np.ascontiguousarray(g_g, dtype=np.float32)
        self.q, self.g = self.q_g.shape
        self.n = self.q + self.g

    def columns(self, a: int, b: int) -> np.ndarray:
        """Stacked[:, a:b]^T as [b-a, n] (a..b entirely inside the query or the gallery part)."""
        q = self.q
        if b <= q:
            return np.concatenate([self.q_q[:, a:b].T, self.q_g[a:b]], axis=1)
        return np.concatenate([self.q_g[:, a - q:b - q].T, self.g_g[:, a - q:b - q].T], axis=1)

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Stacked[rows, cols] elementwise."""
        q = self.q
        out = np.empty(rows.shape, dtype=np.float32)
        rq, cq = rows < q, cols < q
        m = rq & cq
        out[m] = self.q_q[rows[m], cols[m]]
        m = rq & ~cq
        out[m] = self.q_g[rows[m], cols[m] - q]
        m = ~rq & cq
        out[m] = self.q_g[cols[m], rows[m] - q]
        m = ~rq & ~cq
        out[m] = self.g_g[rows[m] - q, cols[m] - q]
        return out


def _chunks(n: int, q: int, size: int):
    """Ranges of at most `size` that never straddle the query/gallery boundary."""
    for lo, hi in ((0, q), (q, n)):
        for a in range(lo, hi, size):
            yield a, min(a + size, hi)


def _reciprocal(top: torch.Tensor, k: int) -> torch.Tensor:
    """mask[i, a]: i is among the first k neighbours of top[i, a] (top holds >= k columns)."""
    first = top[:, :k]
    n = top.shape[0]
    out = torch.empty((n, k), dtype=torch.bool)
    for a in range(0, n, 4096):
        b = min(a + 4096, n)
        me = torch.arange(a, b).view(-1, 1, 1)
        out[a:b] = (first[first[a:b]] == me).any(-1)
    return out


def _expanded_sets(top: torch.Tensor, k1: int, chunk: int = 1024):
    """Rows (i) and columns (j) of the expanded k-reciprocal sets, duplicates removed."""
    n = top.shape[0]
    kh = int(np.around(k1 / 2.0)) + 1
    rec = _reciprocal(top, k1 + 1)
    top_h = top[:, :kh]
    rec_h = _reciprocal(top, kh)
    rows, cols = [], []
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        t, r = top[a:b, :k1 + 1], rec[a:b]                      # R(i): t where r
        cand_sets, cand_mask = top_h[t], rec_h[t]              # [c, K, kh]: H(candidate)
        inside = ((cand_sets.unsqueeze(-1) == t.view(b - a, 1, 1, -1)) & r.view(b - a, 1, 1, -1)).any(-1)
        inter = (inside & cand_mask).sum(-1)
        size = cand_mask.sum(-1)
        accept = r & (inter.float() > 2.0 / 3.0 * size.float())
        members = torch.cat([t, cand_sets.reshape(b - a, -1)], 1)
        keep = torch.cat([r, (cand_mask & accept.unsqueeze(-1)).reshape(b - a, -1)], 1)
        members = torch.where(keep, members, torch.full_like(members, n))
        members, _ = members.sort(1)
        first = torch.ones_like(keep)
        first[:, 1:] = members[:, 1:] != members[:, :-1]
        keep = first & (members < n)
        i_idx = torch.arange(a, b).view(-1, 1).expand_as(members)
        rows.append(i_idx[keep])
        cols.append(members[keep])
    return torch.cat(rows).numpy(), torch.cat(cols).numpy()


def _min_sum(vq: sp.csr_matrix, vg_csc: sp.csc_matrix, max_pairs: int = 1 << 22,
             max_cells: int = 1 << 23) -> np.ndarray:
    """s[i, j] = sum_k min(vq[i,k], vg[j,k]) over shared nonzero columns, in bounded pieces
    (at most `max_pairs` (i, j, k) triplets and `max_cells` output cells at a time)."""
    nq, ng = vq.shape[0], vg_csc.shape[0]
    out = np.zeros((nq, ng), dtype=np.float32)
    col_nnz = np.diff(vg_csc.indptr)
    cs = np.concatenate([[0], np.cumsum(col_nnz[vq.indices])])
    per_row = cs[vq.indptr[1:]] - cs[vq.indptr[:-1]]
    max_rows = max(1, max_cells // max(ng, 1))
    a = 0
    while a < nq:
        fit = int(np.searchsorted(np.cumsum(per_row[a:a + max_rows]), max_pairs, side="right"))
        b = a + max(1, fit)
        lo, hi = vq.indptr[a], vq.indptr[b]
        k, v = vq.indices[lo:hi], vq.data[lo:hi]
        i = np.repeat(np.arange(b - a), np.diff(vq.indptr[a:b + 1]))
        counts = col_nnz[k]
        total = int(counts.sum())
        if total:
            # positions indptr[k] + 0..counts-1 of every column k, concatenated
            pos = np.repeat(vg_csc.indptr[k] - (np.cumsum(counts) - counts), counts) + np.arange(total)
            m = np.minimum(np.repeat(v, counts), vg_csc.data[pos])
            flat = np.repeat(i, counts).astype(np.int64) * ng + vg_csc.indices[pos]
            out[a:b] = np.bincount(flat, weights=m, minlength=(b - a) * ng).reshape(b - a, ng)
        a = b
    return out


def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
               chunk: int = 1024) -> np.ndarray:
    """Re-ranked [q, g] distance (float32) from the three euclidean distance blocks."""
    s = _Stacked(q_g_dist, q_q_dist, g_g_dist)
    n, q = s.n, s.q
    kk = min(k1 + 1, n)
    top = torch.empty((n, kk), dtype=torch.int64)
    colmax = np.empty(n, dtype=np.float32)
    for a, b in _chunks(n, q, chunk):
        sq = torch.from_numpy(s.columns(a, b)).pow_(2)          # rows a..b of d, before scaling
        m = sq.max(1).values
        colmax[a:b] = m.numpy()
        top[a:b] = torch.topk(sq / m.unsqueeze(1), kk, dim=1, largest=False, sorted=True).indices
    rows, cols = _expanded_sets(top, kk - 1)
    d = s.at(cols, rows) ** 2 / colmax[rows]                   # d[i, j] = stacked[j, i]^2 / colmax[i]
    w = np.exp(-d).astype(np.float32)
    row_sum = np.bincount(rows, weights=w, minlength=n)
    v = sp.csr_matrix((w / row_sum[rows], (rows, cols)), shape=(n, n), dtype=np.float32)
    if k2 != 1:
        kq = min(k2, kk)
        qe = sp.csr_matrix((np.full(n * kq, 1.0 / kq, np.float32),
                            (np.repeat(np.arange(n), kq), top[:, :kq].reshape(-1).numpy())), shape=(n, n))
        v = (qe @ v).tocsr()
    v.sum_duplicates()
    jaccard_sum = _min_sum(v[:q], v[q:].tocsc())
    original = s.q_g ** 2 / colmax[:q, None]
    final = (1.0 - jaccard_sum / (2.0 - jaccard_sum)) * (1.0 - lambda_value) + original * lambda_value
    return final.astype(np.float32, copy=False)
