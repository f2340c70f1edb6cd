"""The boundary that the grader's children run in, and the rules its check process applies.

`python -m bertlab grade` (`bertlab.classroom.grade`) runs each submission's notebook, and
checks each exercise, in a child process. On Linux, as root, each child starts through
``unshare`` in new mount, PID and network namespaces, where a short root script
1. hides the teacher's folders behind empty read-only ones: notebooks/, .git and runs/ of
   the checkout (they hold the solutions), the submissions and the hidden checks;
2. makes every file system read-only (the package and the virtual environment too);
3. mounts a private, size-limited tmpfs on /tmp, /var/tmp and /dev/shm: the child's only
   writable folder, its HOME, gone when the child ends;
4. brings up loopback only (the kernel talks to nbclient over it);
then becomes `nobody` (setpriv: no groups, no capabilities, no new privileges) and runs the
child as PID 1 of its namespace: code that it runs cannot signal it or any process outside,
and every process it starts dies with it. Where that is impossible (not root, no unshare),
`probe` says why; children then run as the grader's user with a scratch folder, limits and
a clean environment only, and the grader warns. CLASSROOM.md says what this does not stop.

`borrowed` (static), `package_object` and `fingerprint` (dynamic) are the check process's
rules against an answer taken from the package, or a check that the solution rewrote.
"""

from __future__ import annotations

import ast
import functools
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

USER = "nobody"
# What a child keeps of the grader's environment (no tokens, keys or the teacher's paths).
KEEP = ("PATH", "LANG", "LC_", "TZ", "BERTLAB_", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
        "TRANSFORMERS_OFFLINE", "TOKENIZERS_", "OMP_", "MKL_", "CUDA_", "PYTHONHASHSEED")


@functools.cache
def probe() -> str:
    """"" when the boundary can be built here, else one sentence saying why not."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "the grader is not running as root on Linux, so it cannot switch users or namespaces"
    for path in (Path(sys.prefix).resolve(), Path(__file__).resolve().parents[2]):
        if Path("/tmp") in path.parents:  # the boundary mounts a private /tmp, which would hide them
            return f"the package or its Python lives under /tmp ({path}), which the boundary replaces"
    missing = [tool for tool in ("unshare", "setpriv", "mount", "ip") if shutil.which(tool) is None]
    if missing:
        return f"{missing[0]} is not installed"
    try:
        pwd.getpwnam(USER)
        test = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--net", "true"],
                              capture_output=True, timeout=30)
    except (KeyError, OSError, subprocess.SubprocessError) as err:
        return f"there is no user {USER} or no unshare ({type(err).__name__})"
    return "" if test.returncode == 0 else "unshare cannot create namespaces here (a container?)"


def _mount_points() -> list[str]:
    """Every mount point but /proc, /sys and /dev (octal escapes in mountinfo decoded)."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if not any(point == p or point.startswith(p + "/") for p in ("/proc", "/sys", "/dev")):
                points.append(point)
    return list(dict.fromkeys(points))


def _unreachable() -> dict[str, list[str]]:
    """{a folder that others may not enter: [the interpreter's folders below it]}: such as
    /root for a Python installed by pyenv in root's home, which the kernel must still run."""
    blocked: dict[str, list[str]] = {}
    wanted = {os.path.realpath(sys.base_prefix), os.path.dirname(os.path.realpath(sys.executable))}
    for needed in sorted(w for w in wanted if not any(Path(w).is_relative_to(o) for o in wanted - {w})):
        parts = Path(needed).parts
        for k in range(2, len(parts)):
            folder = str(Path(*parts[:k]))
            if not os.stat(folder).st_mode & 0o001:
                blocked.setdefault(folder, []).append(needed)
                break
    return blocked


@dataclass
class Boundary:
    """Where a child may look and write; `problem` is "" when the boundary is in force."""

    hidden: tuple[Path, ...] = ()
    scratch_gb: float = 2.0
    problem: str = field(default_factory=probe)

    def script(self) -> str:
        """The root part of the child's start (see the module doc), ending in exec setpriv."""
        user = pwd.getpwnam(USER)
        lines = ["set -e"]
        for path in self.hidden:
            if path.is_dir():
                lines.append(f"mount -t tmpfs -o ro,size=16k,mode=0555 bertlab-hidden {shlex.quote(str(path))}")
        lines.append("mount -o remount,bind,ro /")
        lines += [f"mount -o remount,bind,ro {shlex.quote(p)} 2>/dev/null || true"
                  for p in _mount_points() if p != "/"]
        size = max(int(self.scratch_gb * 1024), 64)
        lines.append(f"mount -t tmpfs -o size={size}m,mode=0700,uid={user.pw_uid},gid={user.pw_gid} "
                     "bertlab-scratch /tmp")
        for k, (folder, inside) in enumerate(_unreachable().items()):  # cover it, open only those
            stages = [f"/tmp/.stage{k}.{j}" for j in range(len(inside))]
            lines += [f"mkdir {t} && mount --bind {shlex.quote(i)} {t}" for t, i in zip(stages, inside)]
            lines.append(f"mount -t tmpfs -o size=1m,mode=0755 bertlab-cover {shlex.quote(folder)}")
            lines += [f"mkdir -p {shlex.quote(i)} && mount --move {t} {shlex.quote(i)} && rmdir {t}"
                      for t, i in zip(stages, inside)]
            lines.append(f"mount -o remount,ro bertlab-cover {shlex.quote(folder)}")
        lines += [f"[ -d {p} ] && mount --bind /tmp {p} || true" for p in ("/var/tmp", "/dev/shm")]
        lines += ["ip link set lo up", "cd /tmp",
                  f"exec setpriv --reuid={user.pw_uid} --regid={user.pw_gid} --clear-groups "
                  '--no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"']
        return "\n".join(lines)

    def command(self, argv: list[str]) -> list[str]:
        return ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
                "--net", "--kill-child", "--", "sh", "-c", self.script(), "sh", *argv]


def child_env(scratch: str) -> dict[str, str]:
    """The grader's environment without secrets, with HOME and every cache in `scratch`."""
    env = {k: v for k, v in os.environ.items() if k.startswith(KEEP) and "TOKEN" not in k}
    env.update(HOME=scratch, TMPDIR=scratch, IPYTHONDIR=f"{scratch}/.ipython",
               JUPYTER_RUNTIME_DIR=f"{scratch}/.jupyter", JUPYTER_CONFIG_DIR=f"{scratch}/.jupyter",
               MPLCONFIGDIR=f"{scratch}/.matplotlib", XDG_CACHE_HOME=f"{scratch}/.cache",
               BERTLAB_PROFILE="ci", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               MPLBACKEND="Agg", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill a child and everything it started (as root this reaches into its namespaces)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.kill()


SCRATCH_PREFIX = "bertlab-grade-"  # then the grader's pid: a folder whose grader is gone is stale
_running: set[subprocess.Popen] = set()  # the children now running, for `stop_all`
_running_lock = threading.Lock()


def stop_all() -> None:
    """Kill every child still running: the grader is stopping (Ctrl-C), and a child left
    alone would run on to its time limit, keeping its scratch folder (a copy of a submission)."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        kill_tree(proc)


def remove_stale_scratch() -> list[Path]:
    """Remove this user's scratch folders left by a grader that was killed (no `finally` runs
    after a SIGKILL): those whose grader's pid, in the name, is no longer running."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name[len(SCRATCH_PREFIX):].partition("-")[0]
        try:
            mine = folder.is_dir() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def run_child(code: str, stdin: str, memory_gb: float, time_limit: float,
              boundary: Boundary | None = None) -> tuple[str, bool]:
    """Run ``python -c code`` inside the boundary (or without one) with the limits;
    return (stdout, timed_out). Its scratch folder is its working directory and HOME."""
    boundary = boundary if boundary is not None else Boundary()
    limit = int(memory_gb * 1e9)
    # the child sets its own memory limit (a preexec_fn is unsafe with threads); its kernel inherits it
    prefix = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit})); "
    if not boundary.problem:  # the user nobody: a fork bomb stops here (as root it would not)
        prefix += "resource.setrlimit(resource.RLIMIT_NPROC, (4096, 4096)); "
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as host_scratch:
        scratch = host_scratch if boundary.problem else "/tmp"
        argv = [sys.executable, "-c", prefix + code]
        proc = subprocess.Popen(
            boundary.command(argv) if not boundary.problem else argv,
            cwd=host_scratch, env=child_env(scratch), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, start_new_session=True,
        )
        with _running_lock:
            _running.add(proc)
        try:
            out, _ = proc.communicate(stdin, timeout=time_limit)
            return out, False
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            out, _ = proc.communicate()
            return out, True
        finally:
            with _running_lock:
                _running.discard(proc)
            if proc.poll() is None:
                kill_tree(proc)


# ---------------------------------------------------------------------------------------
# The check process's rules: an answer must not come from the package or rewrite the checks

REFLECTIVE = {"importlib", "inspect", "gc", "ctypes", "builtins", "marshal"}
REFLECTIVE_NAMES = {"__import__", "exec", "eval", "compile", "globals", "vars", "__builtins__",
                    "__loader__", "__spec__", "breakpoint"}
REFLECTIVE_ATTRS = {"getsource", "getsourcefile", "getsourcelines", "_getframe", "f_back",
                    "f_globals", "f_locals", "__globals__", "__code__", "__closure__",
                    "__subclasses__", "setprofile", "settrace", "__wrapped__"}
FOLDERS = ("notebooks/", "/notebooks", "exercises/", "/exercises", ".ipynb", "bertlab.exercises")


def _root(node: ast.AST) -> str:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _aliases(tree: ast.AST, names: tuple[str, ...]) -> tuple[set[str], set[str], str]:
    """(local names bound to bertlab or to something in it, names bound to sys, a reason
    to flag an import; "" if none)."""
    package, system = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = [(a.name, a.asname or a.name.split(".")[0], a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found = [(node.module or "", a.asname or a.name, a.name) for a in node.names]
        else:
            continue
        for module, bound, name in found:
            top = module.split(".")[0]
            if top in REFLECTIVE:
                return package, system, f"imports {module}, which can reach the checks or the package's answers"
            if module.startswith(("bertlab.exercises", "bertlab.classroom")):
                return package, system, f"imports {module}, the checks themselves"
            if top == "sys" and module == name:
                system.add(bound)
            elif top == "sys" and name in REFLECTIVE_ATTRS | {"modules", "*"}:
                return package, system, f"imports {name} from sys, which can reach the package's answers"
            if top != "bertlab":
                continue
            if isinstance(node, ast.ImportFrom) and name in names:
                return package, system, f"imports {name} from {module}: that is the package's own answer"
            if isinstance(node, ast.ImportFrom) and name in ("exercises", "classroom", "*"):
                return package, system, f"imports {name} from {module}"
            package.add(bound)
    return package, system, ""


def borrowed(tree: ast.AST, names: tuple[str, ...]) -> str:
    """Why a solution takes its answer from the package, rewrites it or reads what it must
    not (the checks, the teacher's notebooks), judged from its source; "" when it does not."""
    package, system, why = _aliases(tree, names)
    if why:
        return why
    for node in ast.walk(tree):
        text = ast.unparse(node) if isinstance(node, ast.expr) else ""
        if isinstance(node, ast.Name) and node.id in REFLECTIVE_NAMES:
            return f"uses {node.id}, which a solution does not need"
        if isinstance(node, ast.Attribute) and (node.attr in REFLECTIVE_ATTRS or (
                node.attr == "modules" and _root(node) in system)):
            return f"uses {text}, which a solution does not need"
        if isinstance(node, ast.Attribute) and node.attr in names and _root(node) in package:
            return f"uses {text}: that is the package's own answer"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                any(f in node.value for f in FOLDERS) or node.value.strip("/") in ("notebooks", "exercises")):
            return f"refers to {node.value[:60]!r} (the teacher's notebooks or the checks)"
        targets = (node.targets if isinstance(node, ast.Assign | ast.Delete) else
                   [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
        for target in targets:
            if isinstance(target, ast.Attribute | ast.Subscript) and _root(target) in package | system:
                return f"changes the package ({ast.unparse(target)})"
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args
                and node.func.id in ("getattr", "setattr", "delattr")):
            key = node.args[1] if len(node.args) > 1 else None
            key = key.value if isinstance(key, ast.Constant) else None
            if _root(node.args[0]) in package | system or key in names or key in REFLECTIVE_ATTRS:
                return f"uses {text}, which can reach the package's answers or change them"
    return ""


def package_object(obj: Any, name: str) -> str:
    """After exec: why the learner's `name` is the package's own object (or a subclass of
    the package's class of that name); "" when it is the learner's."""
    chain = [c for c in obj.__mro__ if c is not object] if isinstance(obj, type) else [obj]
    for k, item in enumerate(chain):
        module = getattr(item, "__module__", None)
        if isinstance(module, str) and module.split(".")[0] == "bertlab" and (
                k == 0 or getattr(item, "__name__", "") == name):
            return f"{name} is {module}.{getattr(item, '__qualname__', name)}, the package's own"
    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] == "bertlab" and vars(module).get(name) is obj:
            return f"{name} is the package's own, from {module_name}"
    return ""


GUARDED = ("builtins", "math", "numpy", "torch", "torch.nn.functional")


def fingerprint() -> dict[tuple[str, str], tuple[int, ...]]:
    """The identity of every global of the package and of what its checks call (functions
    and their code, classes and their attributes), to see whether a solution rewrote one."""
    seen = {}
    for name, module in list(sys.modules.items()):
        if not (name.split(".")[0] == "bertlab" or name in GUARDED) or module is None:
            continue
        for key, value in list(vars(module).items()):
            if name in GUARDED and not callable(value):
                continue
            seen[(name, key)] = (id(value), id(getattr(value, "__code__", None)),
                                 id(getattr(value, "__defaults__", None)))
            if isinstance(value, type) and (name.split(".")[0] == "bertlab" or value.__name__ == "Tensor"):
                seen.update({(f"{name}.{key}", k): (id(v),) for k, v in list(vars(value).items())})
    base = sys.modules.get("bertlab.exercises.base")
    for eid, ex in getattr(base, "EXERCISES", {}).items():  # the registry, edited in place or not
        seen[("registry", eid)] = (id(ex), id(ex.checker))
    return seen


def changed(before: dict, after: dict) -> str:
    """The first guarded global that a solution replaced or removed, as "module.name"; or ""."""
    for key, ident in before.items():
        if after.get(key) != ident:
            return ".".join(key)
    return ""
