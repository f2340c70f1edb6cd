"""Test-suite plumbing: a table of seconds per notebook (and per test file) at the end."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

_seconds: dict[str, float] = defaultdict(float)
_failed: set[str] = set()
_t0 = time.perf_counter()


def pytest_runtest_logreport(report):
    name = Path(str(report.fspath)).name if hasattr(report, "fspath") else report.nodeid.split("::")[0]
    _seconds[name] += report.duration
    if report.failed:
        _failed.add(name)


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    tr = terminalreporter
    notebooks = {k: v for k, v in _seconds.items() if k.endswith(".ipynb")}
    others = {k: v for k, v in _seconds.items() if not k.endswith(".ipynb")}
    for title, table in (("notebooks (ci profile)", notebooks), ("test files", others)):
        if not table:
            continue
        tr.write_sep("-", f"seconds per {title}")
        width = max(len(k) for k in table)
        for name in sorted(table):
            mark = "FAIL" if name in _failed else "ok"
            tr.write_line(f"{name:<{width}}  {table[name]:7.1f} s  {mark}")
        tr.write_line(f"{'total':<{width}}  {sum(table.values()):7.1f} s")
    tr.write_line(f"wall time of the whole run: {time.perf_counter() - _t0:.0f} s")
