"""bertlab.attention against torch's scaled_dot_product_attention and the bundled model."""

import pytest
import torch
import torch.nn.functional as F

from bertlab import hub
from bertlab.attention import (
    MultiHeadSelfAttention,
    is_packed,
    merge_heads,
    packed_layout,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
    varlen_offsets,
)
from bertlab.errors import ParameterError


def random_qkv(seed=0, B=2, h=3, T=5, d=4):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, h, T, d, generator=g) for _ in range(3))


def test_matches_torch_sdpa_without_mask():
    q, k, v = random_qkv()
    out, probs = scaled_dot_product_attention(q, k, v)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 3, 5))


def test_padding_mask_matches_torch_and_zeroes_padding():
    q, k, v = random_qkv(1)
    attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    mask = padding_mask(attention_mask)
    assert mask.shape == (2, 1, 1, 5) and mask.dtype == torch.bool
    out, probs = scaled_dot_product_attention(q, k, v, mask)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-6)
    assert probs[1, :, :, 3:].abs().max() == 0  # no weight on padded keys
    # padding changes nothing for the real tokens: same as attention over the 3 real keys
    short, _ = scaled_dot_product_attention(q[1:, :, :3], k[1:, :, :3], v[1:, :, :3])
    assert torch.allclose(out[1:, :, :3], short, atol=1e-6)


def test_one_key_gives_its_value():
    q, k, v = torch.randn(1, 4), torch.randn(1, 4), torch.randn(1, 4)
    out, probs = scaled_dot_product_attention(q, k, v)
    assert probs.item() == 1.0 and torch.equal(out, v)


def test_fully_masked_row_stays_finite():
    q, k, v = random_qkv(2)
    out, _ = scaled_dot_product_attention(q, k, v, padding_mask(torch.zeros(2, 5)))
    assert torch.isfinite(out).all()


def test_split_merge_round_trip():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    assert torch.equal(heads[:, 1], x[:, :, 4:8])  # head 1 holds features 4..7
    assert torch.equal(merge_heads(heads), x)


def test_multi_head_is_per_head_attention_and_eager_equals_sdpa():
    torch.manual_seed(0)
    mha = MultiHeadSelfAttention(hidden_size=12, num_heads=3).eval()
    x = torch.randn(2, 5, 12)
    mask = padding_mask(torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]))
    eager, probs = mha(x, mask, "eager", return_probs=True)
    fused, none = mha(x, mask, "sdpa")
    assert none is None and probs.shape == (2, 3, 5, 5)
    assert torch.allclose(eager, fused, atol=1e-6)
    # head_i = Attention(X W_i^Q, X W_i^K, X W_i^V): slice each projection's rows
    heads = []
    for i in range(3):
        rows = slice(4 * i, 4 * i + 4)
        project = lambda lin: F.linear(x, lin.weight[rows], lin.bias[rows])  # noqa: B023
        q, k, v = project(mha.query), project(mha.key), project(mha.value)  # (B, T, d)
        heads.append(scaled_dot_product_attention(q, k, v, mask[:, 0])[0])
    assert torch.allclose(torch.cat(heads, dim=-1), eager, atol=1e-6)


def test_bad_sizes_and_implementation():
    with pytest.raises(ParameterError, match="multiple"):
        MultiHeadSelfAttention(10, 3)
    with pytest.raises(ParameterError, match="eager"):
        MultiHeadSelfAttention(12, 3)(torch.randn(1, 2, 12), implementation="flash")


def test_bundled_model_attention_probabilities():
    ref = hub.load_encoder("minilm", attn_implementation="eager")
    tok = hub.load_tokenizer("minilm")
    batch = tok(["A short one.", "The river bank was steep and muddy."], padding=True, return_tensors="pt")
    with torch.no_grad():
        want = ref(**batch, output_hidden_states=True, output_attentions=True)
        layer = ref.encoder.layer[2].attention.self
        mha = MultiHeadSelfAttention(384, 12)
        mha.load_state_dict({k: v for k, v in layer.state_dict().items()})
        _, probs = mha(want.hidden_states[2], padding_mask(batch["attention_mask"]), "eager", True)
    assert (probs - want.attentions[2]).abs().max() < 1e-5


PACKED = torch.tensor([[1, 1, 1, 2, 2, 0], [1, 1, 1, 1, 0, 0]])  # row 0: two sentences


def test_is_packed_reads_the_mask():
    assert not is_packed(torch.tensor([[1, 1, 0], [1, 1, 1]]))  # one sentence a row: padded
    assert is_packed(PACKED)
    assert is_packed(torch.tensor([[1, 1, 0], [0, 0, 0]]))  # an empty row has no sentence


def test_packed_layout_by_hand():
    positions, block, starts = packed_layout(PACKED)
    assert positions.tolist() == [[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 0, 1]]
    assert starts.tolist() == [[0, 0], [0, 3], [1, 0]]  # each [CLS]: row by row, then by k
    assert block.shape == (2, 1, 6, 6) and block.dtype == torch.bool
    b = block[0, 0].int().tolist()
    assert b[0] == [1, 1, 1, 0, 0, 0] and b[3] == [0, 0, 0, 1, 1, 0]  # own sentence only
    assert b[5] == [0, 0, 0, 0, 0, 1]  # padding sees only padding: no all-masked row
    assert block.any(-1).all()


def test_varlen_offsets_give_the_block_mask_attention():
    cu_seqlens, longest = varlen_offsets(PACKED)
    assert cu_seqlens.tolist() == [0, 3, 5, 6, 10, 12] and cu_seqlens.dtype == torch.int32
    assert longest == 4
    # attention run by run over the flat B * T tokens (what the CUDA kernel computes)
    q, k, v = random_qkv(3, B=2, h=2, T=6)
    flat = [x.transpose(1, 2).reshape(12, 2, 4) for x in (q, k, v)]  # (B*T, h, d)
    runs = []
    for a, b in zip(cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist()):
        qi, ki, vi = (x[a:b].transpose(0, 1) for x in flat)  # (h, n, d)
        runs.append(F.scaled_dot_product_attention(qi, ki, vi).transpose(0, 1))
    by_run = torch.cat(runs).reshape(2, 6, 2, 4).transpose(1, 2)  # (B, h, T, d)
    _, block, _ = packed_layout(PACKED)
    dense = F.scaled_dot_product_attention(q, k, v, attn_mask=block)
    assert torch.allclose(by_run, dense, atol=1e-6)


def test_mask_layout_tells_packed_padded_and_full_masks_apart():
    from bertlab.attention import mask_layout

    assert mask_layout(PACKED) == "packed"
    assert mask_layout(torch.tensor([[1, 1, 0], [1, 1, 1]])) == "padded"
    assert mask_layout(torch.ones(2, 3, dtype=torch.long)) == "full"
    assert mask_layout(torch.tensor([[1, 1, 0], [0, 0, 0]])) == "packed"  # an empty row: no sentence


def test_a_mask_without_padding_gives_the_same_outputs_as_no_mask():
    import dataclasses

    from bertlab.model import BertConfig, BertModel

    for implementation in ("eager", "sdpa"):
        torch.manual_seed(0)
        config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=32)
        model = BertModel(dataclasses.replace(config, attn_implementation=implementation)).eval()
        ids = torch.randint(5, 50, (3, 9))
        full = model(ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        assert torch.allclose(full, model(ids).last_hidden_state, atol=1e-6)
        # and equal to the padded path on the same rows (one padded row added, then dropped)
        mask = torch.cat([torch.ones_like(ids), torch.tensor([[1] * 5 + [0] * 4])])
        padded = model(torch.cat([ids, ids[:1]]), attention_mask=mask).last_hidden_state[:3]
        assert torch.allclose(full, padded, atol=1e-5)
