"""HRNet-C ImageNet classification (HRNet/HRNet-Image-Classification, Ascend HRNet_ID1780 port)."""
