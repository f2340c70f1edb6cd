"""bertlab: the small, tested package that the bertlab course builds.

Each module stores one idea that a notebook derives in full; its docstring names the
notebook. Import modules explicitly, e.g. ``from bertlab import env, hub, data``.
"""

__version__ = "0.1.0"
