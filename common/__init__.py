"""Thin shared layer of the model zoo: device choice, mixed precision, distributed
launch, FPS metering, atomic checkpoints, user errors and log summarising.

No model code lives here.
"""
