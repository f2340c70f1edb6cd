"""Text classification data: the bundled sets, your own files, and the datasets hub.

Introduced in notebook 00. ``load_text_dataset(source)`` returns a `TextDataset`, where
`source` is one of:

- ``"reviews"``: the bundled synthetic sentiment data in ``data/reviews`` (see its card);
- a ``.csv``, ``.tsv`` or ``.jsonl`` file with a ``text`` (or ``sentence``) column and a
  ``label`` column; a ``split`` column (train / validation or dev / test / challenge) if
  present, else a seeded, stratified 80/10/10 split;
- a folder holding ``train``, ``dev`` or ``validation``, ``test`` (and optionally
  ``challenge``) files in those formats: the GLUE layout;
- ``"hf:NAME"`` or ``"hf:NAME/CONFIG"`` (e.g. ``"hf:glue/sst2"``) for the datasets hub,
  when the machine is online.

Labels may be integers or strings; string names are kept in ``label_names``. A test split
without labels (as in GLUE) is reported, and evaluation falls back to validation.
`Collator` turns a list of examples into padded tensors, padding each batch only to its
longest member (dynamic padding).
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bertlab.errors import DataError

DATA_DIR = Path(os.environ.get("BERTLAB_DATA", Path(__file__).resolve().parent.parent / "data"))
BUNDLED = ("reviews",)
CHALLENGE_GROUPS = ("negation", "contrast")
SUFFIXES = (".tsv", ".csv", ".jsonl")
TEXT_COLUMNS = ("text", "sentence")
_SPLIT_NAMES = {"train": "train", "validation": "validation", "dev": "validation",
                "valid": "validation", "test": "test", "challenge": "challenge"}


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


def _read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row dict) for every data row of a .tsv/.csv/.jsonl file."""
    if path.suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path.name}, line {n}: not valid JSON ({err.msg}); "
                                    "each line of a .jsonl file must be one JSON object.") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path.name}, line {n}: expected a JSON object with text and label.")
                rows.append((n, row))
        return rows
    delimiter = "\t" if path.suffix == ".tsv" else ","
    quoting = csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL  # GLUE TSVs keep raw quotes
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path.name} is empty; it needs a header line such as text{delimiter}label.")
        header = [h.strip() for h in header]
        rows = []
        for values in reader:
            n = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise DataError(
                    f"{path.name}, line {n}: expected {len(header)} columns "
                    f"({', '.join(header)}) but found {len(values)}; check the separators on that line."
                )
            rows.append((n, dict(zip(header, values))))
        return rows


def _text_column(path: Path, row: dict[str, Any]) -> str:
    for name in TEXT_COLUMNS:
        if name in row:
            return name
    raise DataError(f"{path.name} has no text column; name it 'text' or 'sentence' (found: {', '.join(row)}).")


def _parse_file(path: Path, default_split: str | None) -> dict[str, list[tuple[str, Any, str]]]:
    """Rows of one file grouped by split: {split: [(text, raw label or None, group)]}."""
    rows = _read_rows(path)
    if not rows:
        raise DataError(f"{path.name} has no data rows.")
    text_col = _text_column(path, rows[0][1])
    has_label = any("label" in row for _, row in rows)
    out: dict[str, list[tuple[str, Any, str]]] = {}
    for n, row in rows:
        text = row.get(text_col)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path.name}, line {n}: the {text_col} column is missing or empty.")
        label = row.get("label")
        if has_label and (label is None or (isinstance(label, str) and not label.strip())):
            if default_split != "test":
                raise DataError(f"{path.name}, line {n}: the label column is missing or empty.")
            label = None
        split = default_split or "train"
        if default_split is None and "split" in row:
            split = _SPLIT_NAMES.get(str(row["split"]).strip().lower())
            if split is None:
                raise DataError(f"{path.name}, line {n}: unknown split {row['split']!r}; "
                                "use train, validation (or dev), test or challenge.")
        out.setdefault(split, []).append((text.strip(), label, str(row.get("group", ""))))
    return out


def _label_names(raw: list[Any]) -> tuple[list[str], dict[Any, int]]:
    """Names and a raw-label -> index map; integer-like labels keep their numbers."""
    values = [v for v in raw if v is not None and str(v).strip() not in {"", "-1"}]
    as_text = [str(v).strip() for v in values]
    if as_text and all(t.lstrip("-").isdigit() for t in as_text):
        top = max(int(t) for t in as_text)
        return [str(i) for i in range(top + 1)], {str(i): i for i in range(top + 1)}
    names = sorted(set(as_text))
    return names, {name: i for i, name in enumerate(names)}


def _build(name: str, parts: dict[str, list[tuple[str, Any, str]]], seed: int,
           label_names: list[str] | None = None) -> TextDataset:
    every = [label for rows in parts.values() for _, label, _ in rows]
    names, index = _label_names(every)
    if label_names is not None:
        names, index = label_names, {**{n: i for i, n in enumerate(label_names)},
                                     **{str(i): i for i in range(len(label_names))}}
    if not names:
        raise DataError(f"{name}: no labels found; add a label column.")

    def convert(rows: list[tuple[str, Any, str]]) -> list[Example]:
        out = []
        for text, label, group in rows:
            key = None if label is None else str(label).strip()
            out.append(Example(text, -1 if key in (None, "", "-1") else index[key], group))
        return out

    if set(parts) <= {"train", "challenge"}:  # one file without splits: stratified 80/10/10
        train, validation, test = stratified_split(convert(parts.get("train", [])), seed)
    else:
        train, validation, test = (convert(parts.get(s, [])) for s in ("train", "validation", "test"))
    challenge = convert(parts["challenge"]) if "challenge" in parts else None
    ds = TextDataset(name, train, validation, test, names, challenge)
    if not train:
        raise DataError(f"{name}: the train split is empty; give a train file or rows with split=train.")
    if test and any(ex.label < 0 for ex in test):
        ds.notes.append(f"{name}: the test split has no labels (as in GLUE), so evaluation uses validation.")
        print(ds.notes[-1])
    return ds


def stratified_split(examples: Sequence[Example], seed: int = 0,
                     fractions: tuple[float, float] = (0.8, 0.1)) -> tuple[list[Example], list[Example], list[Example]]:
    """A seeded 80/10/10 split that keeps each label's share in every part."""
    rng = random.Random(seed)
    by_label: dict[int, list[Example]] = {}
    for ex in examples:
        by_label.setdefault(ex.label, []).append(ex)
    train, validation, test = [], [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        n_train = round(len(group) * fractions[0])
        n_val = round(len(group) * fractions[1])
        train += group[:n_train]
        validation += group[n_train:n_train + n_val]
        test += group[n_train + n_val:]
    for part in (train, validation, test):
        rng.shuffle(part)
    return train, validation, test


# ---------------------------------------------------------------------------------------
# Sources


def _split_file(folder: Path, stem: str) -> Path | None:
    for suffix in SUFFIXES:
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return None


def _load_folder(folder: Path, name: str, seed: int) -> TextDataset:
    parts: dict[str, list[tuple[str, Any, str]]] = {}
    for stem in ("train", "validation", "dev", "test", "challenge"):
        path = _split_file(folder, stem)
        if path is not None:
            split = _SPLIT_NAMES[stem]
            parts.setdefault(split, []).extend(_parse_file(path, split)[split])
    if "train" not in parts:
        raise DataError(f"The folder {name} has no train file; it needs train.tsv (or .csv/.jsonl), "
                        "dev.tsv or validation.tsv, and test.tsv.")
    return _build(name, parts, seed)


def _load_reviews() -> TextDataset:
    folder = DATA_DIR / "reviews"
    if not folder.is_dir():
        raise DataError("The bundled data folder data/reviews is missing; regenerate it with "
                        "python -m bertlab.synth, or set BERTLAB_DATA to the repository's data folder.")
    parts = {split: _parse_file(folder / f"{split}.tsv", split)[split]
             for split in ("train", "validation", "test")}
    ds = _build("reviews", parts, seed=0, label_names=["negative", "positive"])
    ds.challenge = [ex for ex in ds.test if ex.group in CHALLENGE_GROUPS]
    return ds


def _load_hub(spec: str, seed: int) -> TextDataset:
    name, _, config = spec.partition("/") if spec.count("/") == 1 and not spec.startswith(".") else (spec, "", "")
    try:
        import datasets
        raw = datasets.load_dataset(name, config or None)
    except Exception as err:  # offline, unknown name, ...
        raise DataError(
            f"Could not load hf:{spec} from the datasets hub ({type(err).__name__}); the machine may be "
            "offline: use the bundled \"reviews\", a local .csv/.tsv/.jsonl file, or a GLUE-style folder."
        ) from None
    features = raw[next(iter(raw))].features
    label_names = list(getattr(features.get("label"), "names", []) or [])
    parts: dict[str, list[tuple[str, Any, str]]] = {}
    for split_name, split in raw.items():
        split_key = _SPLIT_NAMES.get(split_name)
        if split_key is None:
            continue
        text_col = next((c for c in TEXT_COLUMNS if c in split.column_names), None)
        if text_col is None or "label" not in split.column_names:
            raise DataError(f"hf:{spec} split {split_name} needs a text (or sentence) column and a label column.")
        parts[split_key] = [(t, None if int(lab) < 0 else int(lab), "")
                            for t, lab in zip(split[text_col], split["label"])]
    return _build(f"hf:{spec}", parts, seed, label_names=label_names or None)


def load_text_dataset(source: str = "reviews", seed: int = 0) -> TextDataset:
    """Load a text classification dataset (see the module docstring for `source`)."""
    if not isinstance(source, str) or not source.strip():
        raise DataError('A dataset source must be a non-empty string such as "reviews".')
    if source in BUNDLED:
        return _load_reviews()
    if source.startswith("hf:"):
        return _load_hub(source[3:], seed)
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_folder(path, source, seed)
    if path.is_file():
        if path.suffix not in SUFFIXES:
            raise DataError(f"{source} is a {path.suffix or 'suffix-less'} file; use .csv, .tsv or .jsonl.")
        return _build(source, _parse_file(path, None), seed)
    raise DataError(
        f"No dataset {source!r}: it is not \"reviews\", an existing file or folder, or hf:NAME; "
        "check the path (relative paths start from the notebook's folder)."
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
