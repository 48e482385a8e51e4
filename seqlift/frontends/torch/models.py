"""The ways to give seqlift a PyTorch model.

- a ``torch.nn.Module`` object, or ``FILE.py:FUNCTION`` returning one (``seqlift.frontends``);
- its weights as ``--weights STATE.pt`` (``torch.save(model.state_dict())``, read with
  ``weights_only=True``) or ``STATE.safetensors``;
- ``MODEL.pt`` holding a whole pickled model (``torch.save(model)``): unpickling runs code from the
  file, like a Keras Lambda layer, so it is refused unless ``allow_pickle`` (``--allow-pickle``).

seqlift explains the module in inference mode (``.eval()``: dropout off, batch norm statistics fixed).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ...errors import SeqliftError
from .. import first_line


def is_model(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def weights(model):
    """The module's parameters and buffers as ``(label, bytes)``: name, shape and dtype, and a uint8 view."""
    import torch

    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        yield f"{name} {tuple(tensor.shape)} {tensor.dtype}", data


def load(model, weights=None, custom_objects=None, allow_pickle=False):
    """The module in inference mode, with ``weights`` (a state dict file) loaded into it."""
    import torch

    if custom_objects is not None:
        raise SeqliftError("--custom-objects applies to Keras models; a torch module's classes come with its "
                           "FILE.py:FUNCTION")
    if not isinstance(model, torch.nn.Module):
        model = _from_file(Path(model), allow_pickle)
    if weights is not None:
        load_state(model, Path(weights))
    return model.eval()


def _from_file(path: Path, allow_pickle: bool):
    import torch

    if not path.exists():
        raise SeqliftError(f"{path}: model file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - weights_only refuses anything but tensors and plain containers
        state = None
    if state is not None:
        raise SeqliftError(f"{path}: holds weights only ({type(state).__name__}), no architecture; give the "
                           f"architecture as FILE.py:FUNCTION and this file as --weights {path}")
    if not allow_pickle:
        raise SeqliftError(f"{path}: holds a whole pickled model, and unpickling runs code from the file; pass "
                           "--allow-pickle (allow_pickle=True) if you trust it, or give FILE.py:FUNCTION with "
                           "--weights STATE.pt")
    try:
        model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise SeqliftError(f"{path}: cannot be read as a torch model ({type(exc).__name__}: {first_line(exc)})") from None
    if not isinstance(model, torch.nn.Module):
        raise SeqliftError(f"{path}: holds {type(model).__name__}, not a torch.nn.Module")
    return model


def read_state(path: Path) -> dict:
    """A state dict from ``.safetensors`` or a torch file read with ``weights_only=True``."""
    import torch

    if not path.exists():
        raise SeqliftError(f"--weights {path}: file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except ImportError:
        raise SeqliftError(f"--weights {path}: reading .safetensors needs the safetensors package "
                           "(pip install safetensors)") from None
    except Exception as exc:  # noqa: BLE001 - a pickled model, or not a torch file at all
        raise SeqliftError(f"--weights {path}: not a state dict readable with weights_only=True "
                           f"({type(exc).__name__}: {first_line(exc)})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a checkpoint that wraps its state dict
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SeqliftError(f"--weights {path}: holds {type(state).__name__}, not a state dict of tensors")
    return state


def load_state(model, path: Path) -> None:
    state = read_state(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        missing = [k for k in model.state_dict() if k not in state]
        unexpected = [k for k in state if k not in model.state_dict()]
        detail = (f"missing {', '.join(missing[:5])}" if missing else "") + \
                 (f"{'; ' if missing else ''}unexpected {', '.join(unexpected[:5])}" if unexpected else "")
        raise SeqliftError(f"--weights {path}: does not fit the module ({detail or first_line(exc)})") from None
