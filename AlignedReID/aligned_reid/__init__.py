"""AlignedReID (ResNet-50, Market-1501): data, model, losses, evaluation.

Reimplemented from the facts of huanghoujing/AlignedReID-Re-Production-Pytorch@2e2d454
and its Ascend port; state_dict keys, log lines and metrics follow upstream.
"""
