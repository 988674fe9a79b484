"""ONNX export and an onnxruntime parity check, shared by every model's export.py."""
import os

import numpy as np
import torch

from .errors import UserError


def export(model: torch.nn.Module, dummy_inputs: tuple, path, input_names, output_names,
           opset: int = 11, dynamic_batch: bool = True) -> str:
    """Export `model` (eval mode, fp32, CPU) with the legacy TorchScript exporter, which
    keeps upstream's opset and input/output names and needs no onnxscript."""
    model = model.eval().float().cpu()
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {n: {0: "batch"} for n in list(input_names) + list(output_names)}
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, tuple(dummy_inputs), os.fspath(path), dynamo=False,
                          input_names=list(input_names), output_names=list(output_names),
                          opset_version=opset, dynamic_axes=dynamic_axes, do_constant_folding=True)
    return os.fspath(path)


def run_onnxruntime(path, inputs: dict) -> list:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("onnxruntime is not installed (pip install -r <torch>_requirements.txt)") from None
    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.asarray(v) for k, v in inputs.items()})


def parity(model: torch.nn.Module, path, inputs: dict) -> float:
    """Max absolute difference between PyTorch (eval, fp32) and onnxruntime outputs."""
    model = model.eval().float().cpu()
    with torch.no_grad():
        ref = model(*[torch.as_tensor(v) for v in inputs.values()])
    refs = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    outs = run_onnxruntime(path, {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in inputs.items()})
    return max(float(np.max(np.abs(r.detach().numpy() - o))) for r, o in zip(refs, outs))


def export_and_check(model: torch.nn.Module, dummy_inputs: dict, path, output_names, opset: int = 11,
                     tolerance: float = 1e-3, check_inputs: dict | None = None, dynamic_batch: bool = True) -> float:
    """The tail of every export.py: export `model` with `dummy_inputs` (input name -> tensor),
    run onnxruntime on `check_inputs` (default: the dummy inputs) and compare with PyTorch.
    Returns the max |diff|; above `tolerance` it is a UserError (the file stays for inspection)."""
    export(model, tuple(dummy_inputs.values()), path, list(dummy_inputs), output_names, opset=opset,
           dynamic_batch=dynamic_batch)
    check_inputs = dummy_inputs if check_inputs is None else check_inputs
    diff = parity(model, path, {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in check_inputs.items()})
    if not diff <= tolerance:
        raise UserError(f"ONNX parity check failed: onnxruntime differs from PyTorch by max |diff| {diff:.3g} "
                        f"(> --tolerance {tolerance:g}); the file {os.fspath(path)} is kept for inspection")
    return diff
