"""Errors that a learner reads: one clear sentence, no traceback wall.

Every error the course raises on bad input derives from `BertlabError`. In Jupyter, IPython
calls `_render_traceback_` and shows just our sentence instead of a long traceback.
"""

from __future__ import annotations


class BertlabError(Exception):
    """An error whose message says what was wrong and what to do."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ParameterError(BertlabError, ValueError):
    """A notebook or command parameter has a bad name, type or value."""


class DataError(BertlabError, ValueError):
    """A dataset file or folder cannot be read as the course expects."""


class ModelNotFoundError(BertlabError, OSError):
    """A model name is neither bundled, a local folder, nor reachable online."""


class DeviceError(BertlabError, RuntimeError):
    """The requested device is not available on this machine."""


class ModelFileError(BertlabError, OSError):
    """A model's weight file exists but cannot be used: damaged, incomplete or refused as unsafe."""


class TrainingDiverged(BertlabError, FloatingPointError):
    """The loss or the gradients became nan or inf: the learning rate is too high for this model."""
