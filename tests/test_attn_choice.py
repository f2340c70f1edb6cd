"""Varlen attention can be chosen where a person types settings: TrainConfig, finetune, bench;
refused in one sentence where it cannot apply (transformers' classifiers)."""

from __future__ import annotations

import argparse

import pytest

from bertlab.errors import ParameterError
from bertlab.train import TrainConfig, bench, cli
from bertlab.train.setup import build_model


@pytest.mark.parametrize("kind", ["eager", "sdpa", "varlen"])
def test_the_config_picks_the_attention_of_the_course_bert(tiny, kind):
    model = build_model(TrainConfig(model=tiny, attn_implementation=kind), 2)
    assert model.config.attn_implementation == kind


def test_varlen_with_transformers_classifier_is_one_sentence():
    with pytest.raises(ParameterError, match="varlen' needs implementation='bertlab'"):
        TrainConfig(implementation="transformers", attn_implementation="varlen").validate()
    with pytest.raises(ParameterError, match="attn_implementation"):
        TrainConfig(attn_implementation="flash").validate()


def test_finetune_and_bench_take_the_flag():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert parser.parse_args(["--attn-implementation", "varlen"]).attn_implementation == "varlen"
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert parser.parse_args(["--attn_implementation", "eager"]).attn_implementation == "eager"
    with pytest.raises(SystemExit):
        parser.parse_args(["--attn-implementation", "flash"])
