"""finetune_basics: pooling heads and frozen features, checked against sentence-transformers."""

import pytest
import torch
import torch.nn.functional as F

from bertlab import hub
from bertlab.embeddings import mean_pool
from bertlab.errors import ParameterError
from bertlab.finetune_basics import PooledClassifier, pool, sentence_features

TEXTS = ["The plot was gripping.", "The soup was not tasty at all, to be honest.", "Fine."]


@pytest.fixture(scope="module")
def bundled():
    return hub.load_encoder("minilm"), hub.load_tokenizer("minilm")


def test_pool_choices():
    hidden, mask = torch.randn(2, 3, 4), torch.ones(2, 3)
    torch.testing.assert_close(pool(hidden, mask, "cls"), hidden[:, 0])
    with pytest.raises(ParameterError, match="pooling"):
        pool(hidden, mask, "max")


def test_sentence_features_match_sentence_transformers(bundled):
    encoder, tokenizer = bundled
    feats = sentence_features(encoder, tokenizer, TEXTS, batch_size=2)
    assert feats["cls"].shape == feats["mean"].shape == (3, encoder.config.hidden_size)
    reference = hub.load_sentence_transformer("minilm").encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(F.normalize(feats["mean"], dim=-1), F.normalize(reference, dim=-1),
                               atol=1e-5, rtol=1e-4)


def test_pooled_classifier_heads(bundled):
    encoder, tokenizer = bundled
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
        for pooling, vector in (("cls", hidden[:, 0]), ("mean", mean_pool(hidden, batch["attention_mask"]))):
            model = PooledClassifier(encoder, num_labels=2, pooling=pooling).eval()
            logits = model(**batch)
            assert logits.shape == (3, 2)
            torch.testing.assert_close(logits, model.head(vector))
    with pytest.raises(ParameterError):
        PooledClassifier(encoder, 2, pooling="max")
