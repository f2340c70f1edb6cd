"""Reading your own data files: CSV, TSV and JSONL, and GLUE-style folders of them.

Introduced in notebook 00 with `bertlab.data.load_text_dataset`, which builds a
`TextDataset` from what these functions read. A file has a ``text`` (or ``sentence``)
column, a ``label`` column and optionally ``split`` and ``group`` columns; a folder holds
one file per split (``train``, ``dev`` or ``validation``, ``test``, ``challenge``). Every
problem is one `DataError` sentence that names the file and the line. Each column has one
name: a header (or a JSON object) that names a column twice is refused, since only one of the
two could be read and nothing would say which.

Files are UTF-8; a byte-order mark at the start (Excel's "CSV UTF-8") is ignored, and a
field may be of any length (a long text is cut by the tokenizer later). A label is a
number or a string, one kind per file; ``-1`` (or an empty label) means unlabeled and is
allowed only in a test split. `parse_file` returns each label as a stripped string, or
None for an unlabeled row.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from pathlib import Path
from typing import Any

from bertlab.errors import DataError

SUFFIXES = (".tsv", ".csv", ".jsonl")
TEXT_COLUMNS = ("text", "sentence")
SPLIT_NAMES = {"train": "train", "validation": "validation", "dev": "validation",
                "valid": "validation", "test": "test", "challenge": "challenge"}


def read_text(path: Path) -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark dropped)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path.name}, line {line}: the byte {raw[err.start]:#04x} is not UTF-8, and the file must be "
            "UTF-8; re-save it as UTF-8 (in Excel: Save As, CSV UTF-8; in an editor: encoding UTF-8)."
        ) from None


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row dict) for every data row of a .tsv/.csv/.jsonl file."""
    text = read_text(path)
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(io.StringIO(text), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line, object_pairs_hook=functools.partial(_json_object, path, n))
            except json.JSONDecodeError as err:
                raise DataError(f"{path.name}, line {n}: not valid JSON ({err.msg}); "
                                "each line of a .jsonl file must be one JSON object.") from None
            if not isinstance(row, dict):
                raise DataError(f"{path.name}, line {n}: expected a JSON object with text and label.")
            rows.append((n, row))
        return rows
    delimiter = "\t" if path.suffix == ".tsv" else ","
    quoting = csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL  # GLUE TSVs keep raw quotes
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    # no field is longer than the file: lift csv's 128 KB field limit for this read only
    old_limit = csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path.name} is empty; it needs a header line such as text{delimiter}label.")
        header = [h.strip() for h in header]
        _check_names(path, reader.line_num, header)
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
    finally:
        csv.field_size_limit(old_limit)
    return rows


def _check_names(path: Path, n: int, names: list[str]) -> None:
    """Refuse, in one sentence, a header (or a JSON object) on line `n` that gives two columns one name."""
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:
        raise DataError(f"{path.name}, line {n}: the column {twice!r} is named twice ({', '.join(names)}), and "
                        "only one of the two could be read; give each column its own name, or delete the extra one.")


def _json_object(path: Path, n: int, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's `object_pairs_hook`: the object as a dict, once `_check_names` found no key twice."""
    _check_names(path, n, [key for key, _ in pairs])
    return dict(pairs)


_NUMBER = re.compile(r"-?\d+")


def is_number(label: str) -> bool:
    """True for an integer label such as "1" (a class index), False for a name such as "positive"."""
    return bool(_NUMBER.fullmatch(label))


def check_label(path: Path, n: int, label: Any, split: str) -> str | None:
    """Line `n`'s label as a stripped string, None when unlabeled (only in a test split)."""
    if label is None:
        label = ""  # JSON null: as an empty cell
    if isinstance(label, float) and label.is_integer():
        label = int(label)  # JSON 1.0 is the class 1
    if not isinstance(label, str | int | float):
        raise DataError(f"{path.name}, line {n}: the label {json.dumps(label)} is a {type(label).__name__}, "
                        "but a label must be a number or a string (e.g. 1 or \"positive\"); give each row one label.")
    key = str(label).strip()
    if key in ("", "-1") and split == "test":
        return None
    if not key:
        raise DataError(f"{path.name}, line {n}: the label column is missing or empty; "
                        "give every row outside a test split its label.")
    if key.startswith("-") and is_number(key):
        raise DataError(f"{path.name}, line {n}: the label {key} is negative in the {split} split; labels "
                        "are 0, 1, ... or names, and only -1, in a test split, means unlabeled, so give "
                        "this row its real label.")
    return key


def text_column(path: Path, row: dict[str, Any]) -> str:
    for name in TEXT_COLUMNS:
        if name in row:
            return name
    raise DataError(f"{path.name} has no text column; name it 'text' or 'sentence' (found: {', '.join(row)}).")


def parse_file(path: Path, default_split: str | None) -> dict[str, list[tuple[str, Any, str]]]:
    """Rows of one file grouped by split: {split: [(text, raw label or None, group)]}."""
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path.name} has no data rows.")
    text_col = text_column(path, rows[0][1])
    has_label = any("label" in row for _, row in rows)
    out: dict[str, list[tuple[str, Any, str]]] = {}
    first: dict[bool, tuple[str, int]] = {}  # is a number -> (first such label, its line)
    for n, row in rows:
        text = row.get(text_col)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path.name}, line {n}: the {text_col} column is missing or empty.")
        split = default_split or "train"
        if default_split is None and "split" in row:
            split = SPLIT_NAMES.get(str(row["split"]).strip().lower())
            if split is None:
                raise DataError(f"{path.name}, line {n}: unknown split {row['split']!r}; "
                                "use train, validation (or dev), test or challenge.")
        label = check_label(path, n, row.get("label", ""), split) if has_label else None
        if label is not None:
            first.setdefault(is_number(label), (label, n))
        out.setdefault(split, []).append((text.strip(), label, str(row.get("group", ""))))
    if len(first) == 2:
        (number, n_number), (name, n_name) = first[True], first[False]
        raise DataError(f"{path.name}: the label column mixes numbers and names ({number!r} on line "
                        f"{n_number}, {name!r} on line {n_name}); use one kind for every row: numbers "
                        f"0, 1, ... or names such as {name!r}.")
    return out


def split_file(folder: Path, stem: str) -> Path | None:
    for suffix in SUFFIXES:
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return None
