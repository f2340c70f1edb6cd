"""saliency: attention probabilities recomputed by hand; gradient x input against finite differences."""

import math

import matplotlib
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from bertlab import hub
from bertlab.saliency import attention_heatmap, attention_maps, gradient_x_input, token_bars

matplotlib.use("Agg")
TEXT = "The soup was not tasty."


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    tokenizer = hub.load_tokenizer("minilm")
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, num_labels=2)
    model = BertForSequenceClassification(config).double().eval()
    return model, tokenizer


def test_attention_maps_match_a_manual_softmax(tiny):
    model, tokenizer = tiny
    tokens, attn = attention_maps(model, tokenizer, TEXT)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    n = len(tokens)
    assert attn.shape == (2, 4, n, n)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 4, n), atol=1e-6, rtol=0)
    # layer 0 by hand: softmax(Q K^T / sqrt(d)) from the embeddings output
    enc = tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        h0 = model.bert.embeddings(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"])
        att = model.bert.encoder.layer[0].attention.self
        q = att.query(h0).view(1, n, 4, 8).transpose(1, 2)
        k = att.key(h0).view(1, n, 4, 8).transpose(1, 2)
        manual = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)[0]
    print("max abs diff", (attn[0].double() - manual).abs().max().item())
    torch.testing.assert_close(attn[0].double(), manual, atol=1e-6, rtol=1e-5)


def test_attention_maps_restore_the_attention_implementation(tiny):
    model, tokenizer = tiny
    before = model.config._attn_implementation
    attention_maps(model, tokenizer, TEXT)
    assert model.config._attn_implementation == before


def test_gradient_x_input_sums_to_the_directional_derivative(tiny):
    model, tokenizer = tiny
    attribution = gradient_x_input(model, tokenizer, TEXT, target=1)
    assert attribution.scores.shape == (len(attribution.tokens),)
    assert attribution.target == 1
    torch.testing.assert_close(attribution.probs.sum(), torch.tensor(1.0))
    # sum_t e_t . dz/de_t = d z(alpha e) / d alpha at alpha = 1 (central difference)
    enc = tokenizer(TEXT, return_tensors="pt")
    words = model.get_input_embeddings()(enc["input_ids"]).detach()

    def z(alpha: float) -> float:
        with torch.no_grad():
            out = model(inputs_embeds=alpha * words, attention_mask=enc["attention_mask"],
                        token_type_ids=enc["token_type_ids"])
        return out.logits[0, 1].item()

    eps = 1e-5
    numeric = (z(1 + eps) - z(1 - eps)) / (2 * eps)
    assert abs(attribution.scores.sum().item() - numeric) < 1e-5


def test_default_target_is_the_prediction(tiny):
    model, tokenizer = tiny
    attribution = gradient_x_input(model, tokenizer, TEXT)
    assert attribution.target == int(attribution.probs.argmax())


def test_plots_draw(tiny):
    model, tokenizer = tiny
    tokens, attn = attention_maps(model, tokenizer, TEXT)
    fig = attention_heatmap(tokens, attn[-1, :, 0])
    assert fig.axes[0].get_xlabel() == "attended token"
    scores = gradient_x_input(model, tokenizer, TEXT).scores
    fig = token_bars(tokens, scores)
    assert len(fig.axes[0].patches) == len(tokens)
