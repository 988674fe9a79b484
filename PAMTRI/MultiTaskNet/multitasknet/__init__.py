"""MultiTaskNet of PAMTRI (Tang et al., ICCV 2019) in PyTorch: VeRi reader, DenseNet-121
multi-task model, losses, identity sampler and re-id evaluation."""
