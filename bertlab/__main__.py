"""``python -m bertlab COMMAND ...``: the course's command line.

Each command lives in a module that defines ``add_arguments(parser)`` and
``main(args) -> int`` (or, written "module:name", ``name_arguments`` and ``name_main``, where
two commands share one idea); only the chosen module is imported. The teacher's commands
are in `bertlab.classroom`, the practitioner's in `bertlab.train`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bertlab.errors import BertlabError

COMMANDS = {
    "run": ("bertlab.classroom.run", "run one notebook with papermill, parameters checked"),
    "course": ("bertlab.classroom.course", "run every notebook headless and print a summary"),
    "refresh": ("bertlab.classroom.run:refresh", "re-execute notebooks in place for committing"),
    "sweep": ("bertlab.classroom.sweep", "run a notebook over a grid of parameters"),
    "student": ("bertlab.classroom.student", "write student editions without solutions"),
    "grade": ("bertlab.classroom.grade", "check a folder of submitted notebooks"),
    "finetune": ("bertlab.train.cli", "fine-tune a model on a dataset (also under torchrun)"),
    "bench": ("bertlab.train.bench", "time the naive loop, the Trainer and bertlab.train"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bertlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        if argv and not argv[0].startswith("-"):
            parser.error(f"unknown command {argv[0]!r}; choose one of {', '.join(COMMANDS)}")
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    module_name, _, prefix = COMMANDS[name][0].partition(":")
    module = importlib.import_module(module_name)
    add_arguments = getattr(module, f"{prefix}_arguments" if prefix else "add_arguments")
    run = getattr(module, f"{prefix}_main" if prefix else "main")
    cmd = argparse.ArgumentParser(prog=f"python -m bertlab {name}", description=COMMANDS[name][1])
    add_arguments(cmd)
    args = cmd.parse_args(argv[1:])
    try:
        return int(run(args) or 0)
    except BertlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
