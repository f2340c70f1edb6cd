"""Reading a checkpoint's weight files safely: safetensors, or tensors only from a pickle.

Derived in notebook 08 (`bertlab.pretrained` loads checked weights with `read_weights`);
`bertlab.hub` runs `check_weights` before transformers' own loader reads a folder, whose
errors are tracebacks and whose message for a pickle suggests ``weights_only=False``. A file
that is cut short or damaged, or a ``.bin`` holding Python objects beyond tensors, is one
sentence that says what to do, never a way around the check.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from bertlab.errors import ModelFileError, ModelNotFoundError


def read_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors: model.safetensors, else pytorch_model.bin (weights only, no pickles).

    A file that is cut short or damaged, or a ``.bin`` that holds Python objects beyond
    tensors (which ``torch.load(weights_only=True)`` refuses, so no code in it runs), raises
    `ModelFileError`: one sentence that says what to do, never a way around the check.
    """
    folder = Path(folder)
    if (folder / "model.safetensors").exists():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(folder / "model.safetensors"))
        except (SafetensorError, OSError, ValueError) as err:
            raise _damaged("model.safetensors", folder, err) from None
    if (folder / "pytorch_model.bin").exists():
        try:
            return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if "weights only" not in str(err).lower():
                raise _damaged("pytorch_model.bin", folder, err) from None
            raise ModelFileError(
                f"pytorch_model.bin in {folder} was refused as unsafe: it holds Python objects beyond "
                "tensors, and bertlab never loads pickles; if you trust the checkpoint, convert it to "
                "safetensors in a trusted environment (load it yourself with transformers, e.g. "
                "AutoModel.from_pretrained(folder), then save_pretrained(new_folder, "
                "safe_serialization=True)) and load the new folder."
            ) from None
        except (RuntimeError, OSError, EOFError, ValueError) as err:
            raise _damaged("pytorch_model.bin", folder, err) from None
    raise ModelNotFoundError(
        f"The model folder {folder.name} has no model.safetensors or pytorch_model.bin."
    )


def check_weights(folder: str | Path) -> None:
    """Read a checkpoint's weights far enough to know they are whole and hold no pickle, before
    transformers loads them (its errors are tracebacks, and its message for a pickle suggests
    ``weights_only=False``, the one thing never to do with an unknown file): the header and
    sizes of model.safetensors (no tensor is read), else all of pytorch_model.bin, weights only.
    Raises `read_weights`'s one sentence; a folder with neither file is left to the loader."""
    folder = Path(folder)
    if (folder / "model.safetensors").exists():
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
                f.keys()
        except (SafetensorError, OSError, ValueError) as err:
            raise _damaged("model.safetensors", folder, err) from None
    elif (folder / "pytorch_model.bin").exists():
        read_weights(folder)


def _damaged(file: str, folder: Path, err: Exception) -> ModelFileError:
    """The one "damaged weights" sentence, with the reader's own reason, first line, in brackets."""
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0].rstrip(".")
    return ModelFileError(f"{file} in {folder} is damaged or incomplete ({type(err).__name__}: {reason}); "
                          "download or save it again.")
