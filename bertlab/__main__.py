"""``python -m bertlab COMMAND ...``: the course's command line.

Each command lives in its own module, which defines ``add_arguments(parser)`` and
``main(args) -> int``; only the chosen one is imported.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bertlab.errors import BertlabError

COMMANDS = {
    "run": ("bertlab.runner", "run one notebook with papermill, parameters checked"),
    "course": ("bertlab.course", "run every notebook headless and print a summary"),
    "refresh": ("bertlab.runner_refresh", "re-execute notebooks in place for committing"),
    "sweep": ("bertlab.sweep", "run a notebook over a grid of parameters"),
    "student": ("bertlab.student", "write student editions without solutions"),
    "grade": ("bertlab.grade", "check a folder of submitted notebooks"),
    "finetune": ("bertlab.train.cli", "fine-tune a model on a dataset (also under torchrun)"),
    "bench": ("bertlab.bench", "time the naive loop, the Trainer and bertlab.train"),
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
    module = importlib.import_module(COMMANDS[name][0])
    cmd = argparse.ArgumentParser(prog=f"python -m bertlab {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd)
    args = cmd.parse_args(argv[1:])
    try:
        return int(module.main(args) or 0)
    except BertlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
