"""ArcFace head (TreB1eN model.py `Arcface`, after the 2018-10-25 fixes), always in fp32.

logits = s * cos(theta_j) for j != y, and for the target
  cos(theta + m)            when cos(theta) - cos(pi - m) > 0
  cos(theta) - sin(m) * m   otherwise (the fallback keeps the logit monotonic past theta = pi - m).
Only the B target entries need the margin, so sqrt runs on B values instead of B x C (which also
avoids upstream's 0/0 gradient wherever a non-target cosine hits +-1).
"""
import math

import torch
from torch import nn


class Arcface(nn.Module):
    def __init__(self, embedding_size=512, classnum=51332, s=64.0, m=0.5):
        super().__init__()
        self.classnum = classnum
        self.kernel = nn.Parameter(torch.empty(embedding_size, classnum))
        with torch.no_grad():  # unit columns
            self.kernel.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)
        self.s, self.m = s, m
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        self.mm = self.sin_m * m
        self.threshold = math.cos(math.pi - m)

    def forward(self, embeddings, label):
        with torch.autocast(embeddings.device.type, enabled=False):
            kernel = self.kernel.float()
            cos = torch.mm(embeddings.float(), kernel / torch.norm(kernel, 2, 0, True)).clamp(-1, 1)
            rows = torch.arange(cos.size(0), device=cos.device)
            c = cos[rows, label]
            with_margin = c * self.cos_m - torch.sqrt(1 - c * c) * self.sin_m
            target = torch.where(c - self.threshold <= 0, c - self.mm, with_margin)
            out = cos.index_put((rows, label), target)
            return out * self.s

