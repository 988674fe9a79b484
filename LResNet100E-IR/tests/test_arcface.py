"""ArcFace logits against values worked out by hand (s=64, m=0.5)."""
import math

import pytest
import torch
from face_arcface.arcface import Arcface

COS_M, SIN_M = math.cos(0.5), math.sin(0.5)  # 0.877583, 0.479426
MM = SIN_M * 0.5  # 0.239713: the fallback's subtraction
THRESHOLD = math.cos(math.pi - 0.5)  # -0.877583


def head_with_kernel(kernel):
    head = Arcface(embedding_size=2, classnum=3)
    with torch.no_grad():
        head.kernel.copy_(torch.tensor(kernel, dtype=torch.float32))
    return head


def test_constants():
    head = Arcface(2, 3)
    assert head.threshold == pytest.approx(-0.8775825618903728)
    assert head.mm == pytest.approx(0.2397127693021015)
    assert head.s == 64.0


def test_logits_by_hand():
    # kernel columns (2,0) (0,1) (-1,0): the first is rescaled to unit length by the head
    head = head_with_kernel([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [1.0, 0.0], [-0.96, 0.28]])
    labels = torch.tensor([0, 1, 2, 0])
    out = head(emb, labels)
    expected = 64 * torch.tensor([
        [COS_M, 0.0, -1.0],  # c=1: cos(0+m)
        [0.6, 0.8 * COS_M - 0.6 * SIN_M, -0.6],  # c=0.8, sin=0.6: cos(theta+m) = 0.414411
        [1.0, 0.0, -1.0 - MM],  # c=-1 <= cos(pi-m): fallback -1.239713
        [-0.96 - MM, 0.28, 0.96],  # c=-0.96 <= -0.877583: fallback -1.199713 (not cos(theta+m)=-0.976719)
    ])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-4)
    assert out[3, 0].item() == pytest.approx(64 * -1.199713, abs=1e-3)


def upstream_formula(emb, kernel, label, s=64.0, m=0.5):
    """Spec 4 as TreB1eN writes it: margin on the whole matrix, mask `c - cos(pi-m) <= 0`."""
    w = kernel / kernel.norm(dim=0, keepdim=True)
    cos = (emb @ w).clamp(-1, 1)
    cos_m = cos * math.cos(m) - torch.sqrt(1 - cos ** 2) * math.sin(m)
    mask = (cos - math.cos(math.pi - m)) <= 0
    cos_m[mask] = (cos - math.sin(m) * m)[mask]
    out = cos.clone()
    rows = torch.arange(len(emb))
    out[rows, label] = cos_m[rows, label]
    return out * s


def test_matches_upstream_formula_and_stays_fp32_under_autocast():
    g = torch.Generator().manual_seed(0)
    head = Arcface(8, 5)
    emb = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    emb[0] = -head.kernel[:, 2] / head.kernel[:, 2].norm()  # exactly opposite its class: fallback branch
    label = torch.tensor([2, 1, 0, 4, 3, 2])
    ref = upstream_formula(emb, head.kernel.detach(), label)
    torch.testing.assert_close(head(emb, label), ref, rtol=0, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(emb.bfloat16(), label)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, upstream_formula(emb.bfloat16().float(), head.kernel.detach(), label),
                               rtol=0, atol=1e-4)


def test_kernel_init_unit_columns_and_gradient_finite():
    head = Arcface(16, 7)
    torch.testing.assert_close(head.kernel.norm(dim=0), torch.ones(7), rtol=0, atol=1e-5)
    emb = torch.nn.functional.normalize(torch.randn(4, 16), dim=1).requires_grad_()
    loss = torch.nn.functional.cross_entropy(head(emb, torch.tensor([0, 1, 2, 3])), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert torch.isfinite(emb.grad).all() and torch.isfinite(head.kernel.grad).all()
