"""MultiTaskNet: DenseNet feature extractor + vehicle id / colour / type heads.

state_dict keys are upstream's: `base.<torchvision densenet features key>`, `fc_vid`,
`fc_vcolor`, `fc_vtype`, `classifier_{vid,vcolor,vtype}` (or `fc` for keypoint-only).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .densenet import ARCHS, densenet_features

NUM_KEYPOINT_VALUES = 108


class MultiTaskNet(nn.Module):
    """forward(x, keypoints=None) returns, in train and eval alike:
    multitask: (y_id, y_color, y_type, f_vid); keypoint-only: (y_id, f); neither: (y_id, f).
    The last output is the 1024-d retrieval feature (no normalisation)."""

    def __init__(self, num_vids: int, num_colors: int = 10, num_types: int = 9, in_channels: int = 3,
                 keyptaware: bool = False, multitask: bool = False, arch: str = "densenet121",
                 pretrained_features: dict | None = None):
        super().__init__()
        self.arch, self.keyptaware, self.multitask = arch, bool(keyptaware), bool(multitask)
        self.in_channels = int(in_channels)
        self.base, feat_dim = densenet_features(arch)  # ends at BN norm5, no ReLU
        if pretrained_features is not None:
            self.base.load_state_dict(pretrained_features)
        if self.in_channels != 3:
            self._widen_first_conv(self.in_channels)
        in_dim = feat_dim + NUM_KEYPOINT_VALUES * self.keyptaware
        vid_dim, attr_dim = ARCHS[arch]["vid_dim"], ARCHS[arch]["attr_dim"]
        if self.multitask:
            self.fc_vid = nn.Linear(in_dim, vid_dim)
            self.fc_vcolor = nn.Linear(in_dim, attr_dim)
            self.fc_vtype = nn.Linear(in_dim, attr_dim)
            self.classifier_vid = nn.Linear(vid_dim, num_vids)
            self.classifier_vcolor = nn.Linear(attr_dim, num_colors)
            self.classifier_vtype = nn.Linear(attr_dim, num_types)
            self.feat_dim = vid_dim
        elif self.keyptaware:
            self.fc = nn.Linear(in_dim, vid_dim)
            self.classifier_vid = nn.Linear(vid_dim, num_vids)
            self.feat_dim = vid_dim
        else:
            self.classifier_vid = nn.Linear(feat_dim, num_vids)
            self.feat_dim = feat_dim

    def _widen_first_conv(self, in_channels: int) -> None:
        """Upstream: a new conv drawn from N(0, 0.02) whose RGB slice is the (pretrained) 3-channel conv0."""
        old = self.base.conv0
        new = nn.Conv2d(in_channels, old.out_channels, kernel_size=7, stride=2, padding=3, bias=False)
        with torch.no_grad():
            new.weight.normal_(0.0, 0.02)
            new.weight[:, :3] = old.weight
        self.base.conv0 = new

    def forward(self, x, keypoints=None):
        f = F.adaptive_avg_pool2d(self.base(x), 1).flatten(1)
        if self.keyptaware:
            if keypoints is None:
                raise ValueError("this model is keypoint-aware: forward(x, keypoints) needs the (N,108) keypoints")
            f = torch.cat((f, keypoints.to(f.dtype)), dim=1)
        if self.multitask:
            f_vid = F.leaky_relu(self.fc_vid(f))
            f_color = F.leaky_relu(self.fc_vcolor(f))
            f_type = F.leaky_relu(self.fc_vtype(f))
            return self.classifier_vid(f_vid), self.classifier_vcolor(f_color), self.classifier_vtype(f_type), f_vid
        if self.keyptaware:
            f = F.leaky_relu(self.fc(f))
        return self.classifier_vid(f), f
