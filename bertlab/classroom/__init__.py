"""The teacher's tools: run, sweep, student editions, grading, the course run and its report.

Each command module defines ``add_arguments(parser)`` and ``main(args)`` for
``python -m bertlab COMMAND`` (see `bertlab.__main__`); `notebooks` finds, checks,
executes and cleans notebooks for all of them.
"""
