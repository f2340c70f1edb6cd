"""Checks for notebook 08 (BERT from scratch): a pre-LN block, add & norm, the MLM head's size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertlab.exercises import base
from bertlab.heads import BertForMaskedLM
from bertlab.model import BertConfig, BertModel, count_parameters


def _layer_and_input():
    torch.manual_seed(81)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=32, max_position_embeddings=16, attn_implementation="eager")
    layer = BertModel(config).encoder.layer[0].eval()
    with torch.no_grad():  # LayerNorms that are not the identity, so that LN placement shows
        for norm in (layer.attention.output.LayerNorm, layer.output.LayerNorm):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0, 0.3)
    X = torch.randn(2, 5, 16) * 2 + 1
    return layer, X


def _pre_ln(X, layer, residual=True, activation=F.gelu):
    att = layer.attention
    A = X + att.output.dense(att.self(att.output.LayerNorm(X))[0])
    out = layer.output.dense(activation(layer.intermediate.dense(layer.output.LayerNorm(A))))
    return A + out if residual else out


def _post_ln(X, layer):
    att = layer.attention
    A = att.output.LayerNorm(X + att.output.dense(att.self(X)[0]))
    return layer.output.LayerNorm(A + layer.output.dense(F.gelu(layer.intermediate.dense(A))))


@base.register("08.1", "a pre-LN encoder block", "pre_ln_block")
def _pre_ln_block(pre_ln_block) -> None:
    layer, X = _layer_and_input()
    with torch.no_grad():
        expected = _pre_ln(X, layer)
        answer = pre_ln_block(X.clone(), layer)
        if isinstance(answer, tuple):
            raise base.CheckFailed("08.1", "return the (B, T, H) tensor Y alone, not a tuple.")
        answer = torch.as_tensor(answer)
        if answer.shape == expected.shape:
            if torch.allclose(answer, _post_ln(X, layer), atol=1e-5):
                raise base.CheckFailed(
                    "08.1", "that is BERT's post-LN block: LayerNorm after each residual sum. In "
                    "the pre-LN block each sub-layer reads LN(input), and the sum is not normalised.")
            if torch.allclose(answer, _pre_ln(X, layer, residual=False), atol=1e-5):
                raise base.CheckFailed("08.1", "the second residual is missing: Y = A + FFN(LN_2(A)).")
            if torch.allclose(answer, _pre_ln(X, layer, activation=F.relu), atol=1e-5):
                raise base.CheckFailed("08.1", "the feed-forward uses ReLU; BERT's layers use GELU.")
    base.close("08.1", answer, expected, atol=1e-5, what="pre_ln_block(X (2, 5, 16), layer)")


@base.register("08.2", "add & norm (post-LayerNorm residual)", "add_norm")
def _add_norm(add_norm) -> None:
    gen = torch.Generator().manual_seed(82)
    x, sub = torch.randn(2, 3, 6, generator=gen), torch.randn(2, 3, 6, generator=gen)
    w, b = torch.randn(6, generator=gen), torch.randn(6, generator=gen)
    expected = F.layer_norm(x + sub, (6,), w, b, eps=1e-12)
    answer = torch.as_tensor(add_norm(x.clone(), sub.clone(), w.clone(), b.clone()))
    z = x + sub
    unbiased = w * (z - z.mean(-1, keepdim=True)) / z.var(-1, keepdim=True).add(1e-12).sqrt() + b
    if answer.shape == expected.shape and torch.allclose(answer, unbiased, atol=1e-5):
        raise base.CheckFailed("08.2", "the variance divides by H - 1 (torch.var's default); LayerNorm "
                               "divides by H: use unbiased=False.")
    if answer.shape == expected.shape and torch.allclose(answer, F.layer_norm(x, (6,), w, b, eps=1e-12) + sub, atol=1e-5):
        raise base.CheckFailed("08.2", "the sub-layer's output was added after the LayerNorm; post-LN "
                               "normalises the sum, LayerNorm(x + sublayer_out).")
    base.close("08.2", answer, expected, atol=1e-5,
               what="add_norm(x, sublayer_out, weight, bias) = LayerNorm(x + sublayer_out)")


@base.register("08.3", "the parameters of the masked-LM head", "mlm_head_parameters")
def _mlm_head(mlm_head_parameters) -> None:
    for V, H in ((1000, 64), (30522, 32)):
        config = BertConfig(vocab_size=V, hidden_size=H, num_hidden_layers=1, num_attention_heads=4,
                            intermediate_size=2 * H, max_position_embeddings=64)
        model = BertForMaskedLM(config)
        expected = count_parameters(model) - count_parameters(model.bert)
        answer = mlm_head_parameters(V, H, True)
        if not base.is_finite_number(answer):
            raise base.CheckFailed("08.3", f"return a whole number, not {type(answer).__name__}.")
        answer = int(answer)
        for extra, why in ((V * H, "V * H too many: with tying the decoder's weight is the word-embedding "
                                   "table, which the encoder already counts"),
                           (-V, "V too few: the decoder has its own bias, one per vocabulary entry"),
                           (-2 * H, "2H too few: the transform's LayerNorm has a gamma and a beta"),
                           (-H, "H too few: the transform's dense layer has a bias")):
            if answer == expected + extra:
                raise base.CheckFailed("08.3", f"for V = {V}, H = {H}, tied: {why}.")
        base.equal("08.3", answer, expected, what=f"mlm_head_parameters({V}, {H}, tied=True)")
        base.equal("08.3", int(mlm_head_parameters(V, H, False)), expected + V * H,
                   what=f"mlm_head_parameters({V}, {H}, tied=False): the untied decoder has its own V x H weight")
