"""Reference checks for every exercise, one module per notebook (nb01.py, nb02.py, ...).

Importing this package registers them all with `base.register` (`bertlab.exercises.base`:
the comparisons and the registry); `bertlab.check` runs them.
"""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("nb"):
        importlib.import_module(f"{__name__}.{_info.name}")
