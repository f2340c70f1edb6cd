"""Every command that README.md and CLASSROOM.md show runs, in the ci profile.

The commands are read from the documents themselves: each line of a ```bash block (an
indented ``[--flag value]`` line continues the one above it, and optional ``[...]`` parts are
given), commands named in a block's comments after a colon, and inline code that starts
with ``python -m``, ``make``, ``torchrun``, ``conda`` or ``source``. The ``python -m bertlab``
ones run in this process, from a scratch folder that holds what they name (notebooks/,
submissions/ with one student, points.json, hidden/), with runs/ moved there too; others
run as a subprocess. Where a command cannot run here, STAND_INS gives the command run
instead and the reason (a skip only where nothing can stand in).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bertlab.__main__ import main
from bertlab.classroom import notebooks

REPO = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "CLASSROOM.md")
PREFIXES = ("python -m", "make ", "torchrun ", "conda ", "source ")
HIDDEN = '''import torch

from bertlab.exercises import base


@base.register("06.2:ones", "mean pooling of a batch of ones", "mean_pool")
def _ones(mean_pool):
    hidden, mask = torch.ones(2, 3, 4), torch.tensor([[1, 1, 0], [1, 0, 0]])
    base.close("06.2:ones", mean_pool(hidden, mask), torch.ones(2, 4), atol=1e-6)
'''

SKIP = None  # a command that nothing here can stand in for
# the command as documented -> (what runs instead, why); "make -n" prints what make would run
STAND_INS: dict[str, tuple[str | None, str]] = {
    "make course": ("make -n course", "runs every notebook in the laptop profile (an hour on 2 cores); "
                    "`python -m bertlab course --profile ci` below runs the same command"),
    "make course PROFILE=ci": ("make -n course PROFILE=ci", "every notebook; the course command runs below on 00"),
    "make test": ("make -n test", "the whole test suite, which includes this test"),
    "make lab": ("make -n lab", "starts JupyterLab, which waits for a browser"),
    "python -m venv .venv": ("python -m venv --help", "would replace the .venv that the tests run in"),
    ".venv\\Scripts\\activate": (SKIP, "Windows only"),
    "source .venv/bin/activate": ("bash -c 'source .venv/bin/activate && python -c \"import bertlab\"'",
                                  "activates only the shell it runs in: activate, then import bertlab there"),
    "python -m pip install torch==2.13.0": ("python -m pip install --no-index torch==2.13.0",
                                            "no network here: --no-index checks that the pinned torch is installed"),
    "python -m pip install -r requirements-lock.txt": ("python -m pip install --no-index -r requirements-lock.txt",
                                                       "no network here: --no-index checks every pin is installed"),
    "python -m pip install -e . --no-deps": ("python -m pip show bertlab",
                                             "reinstalling would change the environment the tests run in"),
    "python -m bertlab course --profile ci": ("python -m bertlab course --profile ci --only 00 --out course",
                                              "every notebook takes minutes: the same command on notebook 00"),
    "python -m jupyter lab notebooks/": ("python -m jupyter lab --version", "starts a server that waits for a browser"),
    "python -m pytest tests notebooks --nbval-lax": (
        "python -m pytest notebooks --nbval-lax --collect-only -q -p no:cacheprovider",
        "the whole test suite (make test): collect the notebooks under nbval instead"),
    "conda env create -f environment.yml": (
        "python -c \"import yaml; assert yaml.safe_load(open('environment.yml'))['name'] == 'bertlab'\"",
        "no conda and no network here: check that environment.yml is valid and names the env bertlab"),
    "conda activate bertlab": (SKIP, "no conda here"),
    "python -m bertlab finetune --model minilm --dataset reviews --num_epochs 2": (
        "python -m bertlab finetune --model minilm --dataset reviews --num_epochs 2 --max-train-examples 32 "
        "--max-eval-examples 32 --output-dir finetuned",
        "4000 reviews for 2 epochs take many minutes on 2 CPU cores: the same command on 32 examples"),
    "torchrun --nproc_per_node 4 -m bertlab finetune --model bert-base-uncased --dataset hf:nyu-mll/glue:sst2": (
        "torchrun --nproc_per_node 1 -m bertlab finetune --help",
        "needs the network (a hub model and a hub dataset) and 4 processes: one process, --help"),
    "python -m bertlab refresh 04": ("python -m bertlab refresh --help",
                                     "rewrites a teacher notebook's committed outputs"),
    "python -m bertlab sweep": ("python -m bertlab sweep --help", "named without its arguments (see CLASSROOM.md)"),
}


def _lines(block: str) -> list[str]:
    lines: list[str] = []
    for line in block.splitlines():
        if line[:1].isspace() and line.strip().startswith("[") and lines:
            lines[-1] += " " + line.strip()
        elif line.strip():
            lines.append(line.strip())
    return lines


def documented() -> list[str]:
    """Every command in README.md and CLASSROOM.md, in order, each once."""
    found = []
    for doc in DOCS:
        text = (REPO / doc).read_text(encoding="utf-8")
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
            for line in _lines(block):
                command, _, comment = line.partition(" #")
                found.append(command.strip())
                found += re.findall(r":\s+((?:python|source|make|torchrun|conda)\b.*)$", comment)
        outside = re.sub(r"```.*?```", "", text, flags=re.S)
        found += [c for c in re.findall(r"`([^`\n]+)`", outside) if c.startswith(PREFIXES)]
    return list(dict.fromkeys(re.sub(r"\[([^\]]*)\]", r"\1", re.sub(r"\s+", " ", c)).strip() for c in found))


COMMANDS = documented()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder to run the commands from: what they name, and nothing of the teacher's to overwrite."""
    work = tmp_path_factory.mktemp("documented")
    (work / "notebooks").symlink_to(notebooks.NOTEBOOKS)
    (work / "submissions").mkdir()
    shutil.copy(notebooks.NOTEBOOKS / "06_embeddings.ipynb", work / "submissions" / "ada.ipynb")
    (work / "points.json").write_text(json.dumps({"06.2": 2}))
    (work / "hidden").mkdir()
    (work / "hidden" / "ones.py").write_text(HIDDEN)
    return work


def _bertlab(argv: list[str]) -> tuple[int, str]:
    try:
        return main(argv), ""
    except SystemExit as done:  # --help
        return int(done.code or 0), ""


def test_every_stand_in_is_still_documented():
    assert sorted(set(STAND_INS) - set(COMMANDS)) == []
    assert len(COMMANDS) >= 20 and any(c.startswith("python -m bertlab grade") for c in COMMANDS)


@pytest.mark.slow
@pytest.mark.parametrize("shown", COMMANDS, ids=[c[:90] for c in COMMANDS])
def test_the_documented_command_runs(shown, workdir, monkeypatch, capfd):
    command, reason = STAND_INS.get(shown, (shown, ""))
    if command is SKIP:
        pytest.skip(reason)
    monkeypatch.setenv("BERTLAB_PROFILE", "ci")
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setattr(notebooks, "RUNS", workdir / "runs")
    argv = shlex.split(command)
    t0 = time.perf_counter()
    if argv[:3] == ["python", "-m", "bertlab"]:
        monkeypatch.chdir(workdir)
        status, _ = _bertlab(argv[3:])
    else:
        program = {"python": sys.executable, "torchrun": str(Path(sys.executable).parent / "torchrun")}
        argv[0] = program.get(argv[0], argv[0])
        done = subprocess.run(argv, cwd=workdir if "bertlab" in argv else REPO, env=os.environ.copy(),
                              timeout=600)
        status = done.returncode
    printed = capfd.readouterr()
    print(f"{time.perf_counter() - t0:.1f} s: {command}")
    assert status == 0, (command, printed.out[-2000:], printed.err[-2000:])
    assert "Traceback" not in printed.err, printed.err[-2000:]
    if shown.startswith("python -m bertlab grade"):
        rows = list(csv.DictReader((workdir / "grades.csv").open()))
        assert rows and all(r["passed"] == "True" for r in rows), rows  # the teacher's own notebook passes
        assert {"06.2", "06.2:ones"} <= {r["exercise"] for r in rows}
    if shown.startswith("make "):
        assert f"bertlab {shown.split()[1]}" in printed.out or "pytest" in printed.out or "jupyter" in printed.out
