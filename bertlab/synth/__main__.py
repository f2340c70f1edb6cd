"""``python -m bertlab.synth``: regenerate data/reviews and data/corpus (deterministic).

``python -m bertlab.synth longtail FOLDER [--count N]`` writes a GLUE-style folder of
long-tailed sentence lengths instead (`bertlab.synth.longtail`), to try notebook 11 on data
shaped like your own; nothing under data/ changes.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from bertlab.synth import corpus, longtail, reviews

DATA = Path(__file__).resolve().parents[2] / "data"


def write_reviews(folder: Path = DATA / "reviews") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in reviews.generate().items():
        with open(folder / f"{split}.tsv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label", "group", "template"],
                                    delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


def write_corpus(folder: Path = DATA / "corpus") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    docs = corpus.generate()
    text = "\n\n".join("\n".join(doc) for doc in docs) + "\n"
    (folder / "corpus.txt").write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    if argv[:1] == ["longtail"]:
        parser = argparse.ArgumentParser(prog="python -m bertlab.synth longtail")
        parser.add_argument("folder")
        parser.add_argument("--count", type=int, default=60_000, help="training examples")
        args = parser.parse_args(argv[1:])
        print(f"wrote {longtail.write(args.folder, args.count)}")
        return 0
    write_reviews()
    write_corpus()
    print(f"wrote {DATA / 'reviews'} and {DATA / 'corpus'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
