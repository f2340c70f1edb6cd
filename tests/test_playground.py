"""The fill-mask playground's callback, without a kernel."""

import pytest
import torch

from bertlab import pretraining as P
from bertlab.heads import BertForMaskedLM
from bertlab.playground import fill_mask_playground, guesses_table
from bertlab.tokenization import WordPieceTokenizer


@pytest.fixture(scope="module")
def playground():
    tok = WordPieceTokenizer.from_pretrained("minilm").restricted_to(
        ["the chef cooked the pasta in the kitchen.", "the baker baked the bread."])
    torch.manual_seed(0)
    config = P.tiny_config(len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64)
    return fill_mask_playground(BertForMaskedLM(config).eval(), tok, top_k=4)


def test_initial_text_is_predicted_and_drawn(playground):
    (row,) = playground.guesses
    assert len(row) == 4
    assert [t for t, _ in playground.bars()[0]] == [t for t, _ in row]
    assert playground.bars()[0][0][1] == pytest.approx(row[0][1])


def test_typing_a_sentence_runs_the_callback(playground):
    playground.text.value = "the [MASK] baked the [MASK]."  # as if typed in the box
    assert len(playground.guesses) == 2 and len(playground.figure.axes) == 2
    expected = P.fill_mask(playground.model, playground.tokenizer, "the [MASK] baked the [MASK].", 4)
    assert playground.guesses == expected
    assert playground.message.value == guesses_table(expected)


def test_text_without_mask_shows_a_hint(playground):
    assert playground.update("no mask at all") == []
    assert "[MASK]" in playground.message.value and playground.figure.axes == []
