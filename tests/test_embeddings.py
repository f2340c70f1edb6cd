"""bertlab.embeddings against sentence-transformers on the bundled model."""

import pytest
import torch

from bertlab import embeddings, hub

SENTENCES = [
    "The film was wonderful.",
    "I would not watch it again, the plot made no sense and the acting was wooden throughout.",
    "A bank by the river.",
    "She deposited the cheque at the bank.",
    "ok",
    "Not bad at all, actually rather good!",
    "The service was slow but the food made up for it.",
] + [" ".join(["word"] * 300)]  # longer than MiniLM's 256-token limit: truncated like the reference


@pytest.fixture(scope="module")
def reference():
    return torch.from_numpy(hub.load_sentence_transformer("minilm").encode(SENTENCES, batch_size=3))


@pytest.mark.parametrize("batch_size", [3, 32])
def test_encode_matches_sentence_transformers(reference, batch_size):
    ours = embeddings.encode(SENTENCES, batch_size=batch_size)
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == torch.float32
    assert (ours - reference).abs().max() < 1e-5
    assert torch.allclose(ours.norm(dim=-1), torch.ones(len(SENTENCES)), atol=1e-6)


def test_mean_pool_leaves_out_padding():
    h = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    pooled = embeddings.mean_pool(h, mask)
    assert torch.equal(pooled[0], h[0].mean(0)) and torch.equal(pooled[1], h[1, 0])
    assert torch.equal(embeddings.mean_pool(h, torch.zeros(2, 3)), torch.zeros(2, 2))


def test_model_is_cached_and_edge_cases():
    assert embeddings.load("minilm") is embeddings.load("minilm")
    assert embeddings.load("minilm")[2] == 256
    assert embeddings.encode([]).shape == (0, 384)
    one = embeddings.encode("A bank by the river.")
    assert torch.allclose(one[0], embeddings.encode(SENTENCES[:4])[2], atol=1e-6)


def test_load_resolves_the_model_name_once(monkeypatch):
    """embeddings.load turns the name into a folder once; the model, settings and tokenizer read it."""
    calls = []
    real = hub.bundled_model_dir
    monkeypatch.setattr(hub, "bundled_model_dir", lambda: calls.append(1) or real())
    tokenizer, bert, max_length = embeddings.load("MiniLM")  # an alias: a fresh cache entry
    assert len(calls) == 1 and max_length == 256
    assert bert.config.hidden_size == 384 and tokenizer("ok")["input_ids"][0] == tokenizer.cls_token_id
