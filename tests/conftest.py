"""Fixtures that many test files share: the tiny random BERT and the bundled reviews."""

from __future__ import annotations

import pytest

from bertlab.data import load_text_dataset
from bertlab.train.bench import save_random_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random BERT (hidden 32, 2 layers, 2 heads) saved with the bundled tokenizer."""
    return save_random_model(tmp_path_factory.mktemp("tiny"), "tiny")


@pytest.fixture(scope="module")
def reviews():
    """The bundled reviews (train, validation, test, challenge)."""
    return load_text_dataset("reviews")
