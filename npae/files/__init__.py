"""What npae writes and reads back: :mod:`~npae.files.io` (models and checkpoints, ``.npz`` with a
JSON description: no pickle), :mod:`~npae.files.npz` (the strict archive reader),
:mod:`~npae.files.export` (to PyTorch and back), :mod:`~npae.files.state_dict` (torch's names and
layouts in NumPy), :mod:`~npae.files.safetensors` (the format, NumPy alone), :mod:`~npae.files.png`
(figures without matplotlib)."""

from .export import from_torch_state_dict, save_safetensors, to_torch
from .io import ModelFileError, load, load_checkpoint, save, save_checkpoint
from .safetensors import SafetensorsError, load_safetensors, write_safetensors
from .state_dict import state_dict_arrays

__all__ = ["from_torch_state_dict", "load", "load_checkpoint", "load_safetensors", "ModelFileError", "SafetensorsError",
           "save", "save_checkpoint", "save_safetensors", "state_dict_arrays", "to_torch", "write_safetensors"]
