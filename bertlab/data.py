"""Text classification data: the bundled sets, your own files, and the datasets hub.

Introduced in notebook 00. ``load_text_dataset(source)`` returns a `TextDataset`, where
`source` is one of:

- ``"reviews"``: the bundled synthetic sentiment data in ``data/reviews`` (see its card);
- a ``.csv``, ``.tsv`` or ``.jsonl`` file with a ``text`` (or ``sentence``) column and a
  ``label`` column; a ``split`` column (train / validation or dev / test / challenge) if
  present, else a seeded, stratified 80/10/10 split;
- a folder holding ``train``, ``dev`` or ``validation``, ``test`` (and optionally
  ``challenge``) files in those formats: the GLUE layout;
- ``"hf:NAME[:CONFIG]"`` or ``"hf:ORG/NAME[:CONFIG]"`` for the Hugging Face datasets hub,
  when the machine is online: a "/" belongs to the dataset's id, a ":" starts the config,
  e.g. ``"hf:stanfordnlp/imdb"``, ``"hf:glue:sst2"``, ``"hf:nyu-mll/glue:sst2"``
  (`parse_hf_source`).

Labels are integers (0, 1, ...) or strings, one kind in a dataset; string names are kept
in ``label_names``, sorted, and the classes numbered in that order; integer labels that are
not already 0, 1, ..., k-1 (such as 0 and 100000) are numbered 0 to k-1 the same way, their
values kept as names (and a note says so). There must be at least two labels. ``-1`` means
unlabeled and only in a test split: a test split without labels (as in GLUE) is reported,
and evaluation falls back to validation. Where there is no validation data (a folder without a dev or
validation file, a file whose split column has no validation rows, a hub dataset without
that split), 10% of train, seeded and stratified by label, is held out as validation; this
is said in ``ds.notes`` and printed. File rules (UTF-8, one label per row) are in
`bertlab.datafiles`; anything wrong is one `DataError` sentence.
`Collator` turns a list of examples into padded tensors, padding each batch only to its
longest member (dynamic padding).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from sklearn.model_selection import train_test_split
from sklearn.utils import shuffle

from bertlab.datafiles import SPLIT_NAMES, SUFFIXES, TEXT_COLUMNS, is_number, parse_file, split_file
from bertlab.errors import DataError

DATA_DIR = Path(os.environ.get("BERTLAB_DATA", Path(__file__).resolve().parent.parent / "data"))
BUNDLED_DATASETS = ("reviews",)  # dataset names shipped in data/ (bertlab.hub.DEFAULT_MODEL is the model)
CHALLENGE_GROUPS = ("negation", "contrast")


@dataclass(frozen=True)
class Example:
    """One labelled sentence. `label` indexes `label_names`; -1 means unlabeled."""

    text: str
    label: int
    group: str = ""


@dataclass
class TextDataset:
    """Train, validation and test examples, with label names and an optional challenge set."""

    name: str
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    label_names: list[str]
    challenge: list[Example] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def eval_split(self) -> str:
        """"test", or "validation" when the test split has no labels."""
        labelled = self.test and all(ex.label >= 0 for ex in self.test)
        return "test" if labelled else "validation"

    def split(self, name: str) -> list[Example]:
        if name not in {"train", "validation", "test", "challenge"}:
            raise DataError(f"There is no split {name!r}; use train, validation, test or challenge.")
        return getattr(self, name) or []

    def __repr__(self) -> str:
        parts = [f"train={len(self.train)}", f"validation={len(self.validation)}", f"test={len(self.test)}"]
        if self.challenge is not None:
            parts.append(f"challenge={len(self.challenge)}")
        return f"TextDataset({self.name!r}, {', '.join(parts)}, labels={self.label_names})"


# ---------------------------------------------------------------------------------------
# Reading rows from files


def _label_names(name: str, parts: dict[str, list[tuple[str, Any, str]]]) -> tuple[list[str], dict[Any, int]]:
    """Names and a label -> index map, one kind of label only: names sorted, integers in numeric
    order (0..k-1 stay as they are; a gap, as in 0 and 100000, would make a head with a class per number)."""
    first: dict[bool, tuple[str, str]] = {}  # is a number -> (first such label, its split)
    for split, rows in parts.items():
        for _, label, _ in rows:
            if label is not None:
                first.setdefault(is_number(str(label).strip()), (str(label).strip(), split))
    if len(first) == 2:
        (number, number_split), (word, word_split) = first[True], first[False]
        raise DataError(f"{name}: the {number_split} split has number labels (e.g. {number!r}) but the "
                        f"{word_split} split has names (e.g. {word!r}); use one kind of label in every file.")
    keys = {str(label).strip() for rows in parts.values() for _, label, _ in rows if label is not None}
    if True in first:
        values = sorted({int(key) for key in keys})
        position = {value: i for i, value in enumerate(values)}
        return [str(value) for value in values], {key: position[int(key)] for key in keys}
    names = sorted(keys)
    return names, {label: i for i, label in enumerate(names)}


def _build(name: str, parts: dict[str, list[tuple[str, Any, str]]], seed: int,
           label_names: list[str] | None = None) -> TextDataset:
    names, index = _label_names(name, parts) if label_names is None else (
        label_names, {**{n: i for i, n in enumerate(label_names)}, **{str(i): i for i in range(len(label_names))}})
    if not names:
        raise DataError(f"{name}: no labels found; add a label column.")

    def convert(rows: list[tuple[str, Any, str]]) -> list[Example]:
        out = []
        for text, label, group in rows:
            key = None if label is None else str(label).strip()
            if key is not None and key not in index:
                raise DataError(f"{name}: unknown label {key!r}; the labels are {', '.join(names)}.")
            out.append(Example(text, -1 if key is None else index[key], group))
        return out

    if set(parts) <= {"train", "challenge"}:  # one file without splits: stratified 80/10/10
        train, validation, test = stratified_split(convert(parts.get("train", [])), seed)
    else:
        train, validation, test = (convert(parts.get(s, [])) for s in ("train", "validation", "test"))
    used = {ex.label for ex in train + validation + test if ex.label >= 0}
    if len(used) == 1:
        raise DataError(f"{name} has only the label {names[used.pop()]!r}; a classifier needs at least two "
                        "labels, so add examples of another class (or check the label column).")
    if not train:
        raise DataError(f"{name}: the train split is empty; give a train file or rows with split=train.")
    ds = TextDataset(name, train, validation, test, names, convert(parts["challenge"]) if "challenge" in parts else None)
    if label_names is None and is_number(names[0]) and names != [str(i) for i in range(len(names))]:
        ds.notes.append(f"{name}: the integer labels ({names[0]} to {names[-1]}, {len(names)} in all) are not 0, 1, "
                        f"...; they are numbered 0 to {len(names) - 1} in sorted order and label_names keeps their values.")
        print(ds.notes[-1])
    if not validation and len(train) >= 2:  # nothing to pick the best step on: hold out 10% of train
        n = max(1, round(len(train) * 0.1))
        ds.train, ds.validation = _split(train, len(train) - n, n, seed)
        ds.notes.append(f"{name}: there are no validation examples (no dev or validation file or split), "
                        f"so 10% of train ({n} examples, seed {seed}, stratified by label) is held out as validation.")
        print(ds.notes[-1])
    if test and any(ex.label < 0 for ex in test):
        ds.notes.append(f"{name}: the test split has no labels (as in GLUE), so evaluation uses validation.")
        print(ds.notes[-1])
    return ds


def stratified_split(examples: Sequence[Example], seed: int = 0,
                     fractions: tuple[float, float] = (0.8, 0.1),
                     ) -> tuple[list[Example], list[Example], list[Example]]:
    """A seeded train/validation/test split (80/10/10) that keeps each label's share in every part.

    scikit-learn's ``train_test_split(..., stratify=labels)`` twice: train against the rest,
    then the rest into validation and test; the same `seed` gives the same split. Where a
    step cannot be stratified (a label with a single example, or fewer examples in a part
    than there are labels) that step is a plain seeded shuffle split, so tiny or lopsided
    files still load.
    """
    examples = list(examples)
    n_train = round(len(examples) * fractions[0])
    n_validation = round(len(examples) * fractions[1])
    train, rest = _split(examples, n_train, len(examples) - n_train, seed)
    validation, test = _split(rest, n_validation, len(rest) - n_validation, seed)
    return train, validation, test


def _split(examples: list[Example], n_first: int, n_second: int, seed: int,
           ) -> tuple[list[Example], list[Example]]:
    """`examples` shuffled into parts of `n_first` and `n_second`, stratified by label if possible."""
    if not n_first or not n_second:  # train_test_split refuses an empty part
        shuffled = list(shuffle(examples, random_state=seed)) if examples else []
        return (shuffled, []) if n_first else ([], shuffled)
    sizes = {"train_size": n_first, "test_size": n_second, "random_state": seed}
    try:
        first, second = train_test_split(examples, stratify=[ex.label for ex in examples], **sizes)
    except ValueError:  # a label with one example, or fewer examples in a part than labels
        first, second = train_test_split(examples, **sizes)
    return list(first), list(second)


# ---------------------------------------------------------------------------------------
# Sources


def _load_folder(folder: Path, name: str, seed: int) -> TextDataset:
    parts: dict[str, list[tuple[str, Any, str]]] = {}
    for stem in ("train", "validation", "dev", "test", "challenge"):
        path = split_file(folder, stem)
        if path is not None:
            split = SPLIT_NAMES[stem]
            parts.setdefault(split, []).extend(parse_file(path, split)[split])
    if "train" not in parts:
        raise DataError(f"The folder {name} has no train file; it needs train.tsv (or .csv/.jsonl), "
                        "dev.tsv or validation.tsv, and test.tsv.")
    return _build(name, parts, seed)


def _load_reviews() -> TextDataset:
    folder = DATA_DIR / "reviews"
    if not folder.is_dir():
        raise DataError("The bundled data folder data/reviews is missing; regenerate it with "
                        "python -m bertlab.synth, or set BERTLAB_DATA to the repository's data folder.")
    for split in ("train", "validation", "test"):
        if not (folder / f"{split}.tsv").is_file():
            raise DataError(f"The bundled file {split}.tsv is missing from {folder}; regenerate the bundled "
                            "data with python -m bertlab.synth, or set BERTLAB_DATA to the repository's data folder.")
    parts = {split: parse_file(folder / f"{split}.tsv", split)[split]
             for split in ("train", "validation", "test")}
    ds = _build("reviews", parts, seed=0, label_names=["negative", "positive"])
    ds.challenge = [ex for ex in ds.test if ex.group in CHALLENGE_GROUPS]
    return ds


# hf:NAME[:CONFIG] or hf:ORG/NAME[:CONFIG]; ids hold letters, digits, "-", "_" and "."
_HF_SOURCE = re.compile(r"hf:(?P<name>[A-Za-z0-9][\w.-]*(?:/[A-Za-z0-9][\w.-]*)?)"
                        r"(?::(?P<config>[A-Za-z0-9][\w.-]*))?", re.ASCII)
HF_SYNTAX = "hf:NAME[:CONFIG] or hf:ORG/NAME[:CONFIG] (e.g. hf:stanfordnlp/imdb, hf:nyu-mll/glue:sst2)"


def parse_hf_source(source: str) -> tuple[str, str | None]:
    """Split a datasets-hub source into (dataset id, config or None).

    ``"hf:stanfordnlp/imdb"`` -> ``("stanfordnlp/imdb", None)``; ``"hf:glue:sst2"`` ->
    ``("glue", "sst2")``; ``"hf:nyu-mll/glue:sst2"`` -> ``("nyu-mll/glue", "sst2")``. A "/"
    is part of the dataset id (at most one: ORG/NAME), a ":" starts the config. Anything else
    raises `DataError`.
    """
    match = _HF_SOURCE.fullmatch(source.strip()) if isinstance(source, str) else None
    if match is None or ".." in source:
        raise DataError(f"{source!r} is not a datasets-hub source; write {HF_SYNTAX}.")
    return match["name"], match["config"]


def _load_hub(source: str, seed: int) -> TextDataset:
    name, config = parse_hf_source(source)
    try:
        # datasets is heavy (seconds) and only needed here: imported when a hub dataset is loaded
        import datasets

        raw = datasets.load_dataset(name, config)
    except Exception as err:  # offline, unknown name, ...
        raise DataError(
            f"Could not load {source} from the datasets hub ({type(err).__name__}): the machine may be "
            f"offline, or the name wrong (write {HF_SYNTAX}); offline, use the bundled \"reviews\", "
            "a local .csv/.tsv/.jsonl file, or a GLUE-style folder."
        ) from None
    features = raw[next(iter(raw))].features
    label_names = list(getattr(features.get("label"), "names", []) or [])
    parts: dict[str, list[tuple[str, Any, str]]] = {}
    for split_name, split in raw.items():
        split_key = SPLIT_NAMES.get(split_name)
        if split_key is None:
            continue
        text_col = next((c for c in TEXT_COLUMNS if c in split.column_names), None)
        if text_col is None or "label" not in split.column_names:
            raise DataError(f"{source} split {split_name} needs a text (or sentence) column and a label column.")
        parts[split_key] = [(t, None if int(lab) < 0 else int(lab), "")
                            for t, lab in zip(split[text_col], split["label"])]
    return _build(source, parts, seed, label_names=label_names or None)


def load_text_dataset(source: str = "reviews", seed: int = 0) -> TextDataset:
    """Load a text classification dataset (see the module docstring for `source`)."""
    if not isinstance(source, str) or not source.strip():
        raise DataError('A dataset source must be a non-empty string such as "reviews".')
    if source in BUNDLED_DATASETS:
        return _load_reviews()
    if source.startswith("hf:"):
        return _load_hub(source, seed)
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_folder(path, source, seed)
    if path.is_file():
        if path.suffix not in SUFFIXES:
            raise DataError(f"{source} is a {path.suffix or 'suffix-less'} file; use .csv, .tsv or .jsonl.")
        return _build(source, parse_file(path, None), seed)
    raise DataError(
        f"No dataset {source!r}: it is not \"reviews\", an existing file or folder, or "
        "hf:NAME[:CONFIG] / hf:ORG/NAME[:CONFIG]; check the path (relative paths start from the "
        "notebook's folder)."
    )


def load_corpus() -> list[list[str]]:
    """The bundled unlabeled corpus: documents, each a list of sentences (notebook 09)."""
    path = DATA_DIR / "corpus" / "corpus.txt"
    if not path.exists():
        raise DataError("The bundled corpus data/corpus/corpus.txt is missing; regenerate it with python -m bertlab.synth.")
    text = path.read_text(encoding="utf-8")
    return [block.splitlines() for block in text.strip().split("\n\n")]


class Collator:
    """Pad a batch to its longest member and return tensors for a classifier.

    ``Collator(tokenizer, max_length)(examples)`` -> dict with ``input_ids`` (B, T),
    ``attention_mask`` (B, T), ``token_type_ids`` (B, T) when the tokenizer uses them, and
    ``labels`` (B,). T is the longest example in the batch, at most `max_length`.
    """

    def __init__(self, tokenizer: Any, max_length: int = 128, pad_to_max_length: bool = False):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.padding = "max_length" if pad_to_max_length else "longest"

    def __call__(self, batch: Sequence[Example | dict[str, Any]]) -> dict[str, torch.Tensor]:
        texts = [ex.text if isinstance(ex, Example) else ex["text"] for ex in batch]
        labels = [ex.label if isinstance(ex, Example) else ex.get("label", -1) for ex in batch]
        enc = self.tokenizer(texts, padding=self.padding, truncation=True,
                             max_length=self.max_length, return_tensors="pt")
        out = {key: enc[key] for key in ("input_ids", "attention_mask", "token_type_ids") if key in enc}
        out["labels"] = torch.tensor(labels, dtype=torch.long)
        return out
