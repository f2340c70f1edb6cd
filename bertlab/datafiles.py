"""Reading your own data files: CSV, TSV and JSONL, and GLUE-style folders of them.

Introduced in notebook 00 with `bertlab.data.load_text_dataset`, which builds a
`TextDataset` from what these functions read. A file has a ``text`` (or ``sentence``)
column, a ``label`` column and optionally ``split`` and ``group`` columns; a folder holds
one file per split (``train``, ``dev`` or ``validation``, ``test``, ``challenge``). Every
problem is one `DataError` sentence that names the file and the line.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from bertlab.errors import DataError

SUFFIXES = (".tsv", ".csv", ".jsonl")
TEXT_COLUMNS = ("text", "sentence")
SPLIT_NAMES = {"train": "train", "validation": "validation", "dev": "validation",
                "valid": "validation", "test": "test", "challenge": "challenge"}


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
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
            split = SPLIT_NAMES.get(str(row["split"]).strip().lower())
            if split is None:
                raise DataError(f"{path.name}, line {n}: unknown split {row['split']!r}; "
                                "use train, validation (or dev), test or challenge.")
        out.setdefault(split, []).append((text.strip(), label, str(row.get("group", ""))))
    return out


def split_file(folder: Path, stem: str) -> Path | None:
    for suffix in SUFFIXES:
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return None
