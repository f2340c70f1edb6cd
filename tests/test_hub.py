import pytest
import torch

from bertlab import hub
from bertlab.errors import ModelNotFoundError


def test_bundled_names_resolve_to_the_package_folder():
    path, local = hub.resolve("minilm")
    assert local and path == hub.resolve("sentence-transformers/all-MiniLM-L6-v2")[0]
    assert (hub.bundled_model_dir() / "model.safetensors").exists()


def test_load_tokenizer_encoder_and_classifier_offline():
    tok = hub.load_tokenizer("minilm")
    enc = hub.load_encoder("minilm")
    assert not enc.training
    batch = tok(["the plot was gripping"], return_tensors="pt")
    with torch.no_grad():
        out = enc(**batch)
    assert out.last_hidden_state.shape == (1, batch["input_ids"].shape[1], 384)
    clf = hub.load_classifier("minilm", num_labels=3)
    assert clf.config.num_labels == 3 and clf.classifier.out_features == 3


def test_local_folder_roundtrip(tmp_path):
    enc = hub.load_encoder("minilm")
    enc.save_pretrained(tmp_path)
    hub.load_tokenizer("minilm").save_pretrained(tmp_path)
    again = hub.load_encoder(str(tmp_path))
    for (name, a), (_, b) in zip(enc.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    assert hub.load_tokenizer(str(tmp_path)).tokenize("hello") == ["hello"]


def test_offline_unknown_name_is_one_clear_sentence(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        hub.load_encoder("bert-base-uncased")
    message = str(info.value)
    assert "offline" in message and '"minilm"' in message and "local model folder" in message


def test_bad_folders(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        hub.load_encoder(str(tmp_path / "missing"))
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        hub.load_encoder(str(tmp_path))


def test_default_path_never_opens_a_network_connection(monkeypatch):
    """With the offline variables unset, the bundled model and data still load without a socket."""
    import socket

    import huggingface_hub.constants

    from bertlab import data

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    # huggingface_hub read the variable when it was first imported: switch its copy off too
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    tok = hub.load_tokenizer("minilm")
    hub.load_encoder("minilm")
    hub.load_classifier("minilm", num_labels=2)
    hub.load_sentence_transformer("minilm")
    ds = data.load_text_dataset("reviews")
    assert tok(ds.train[0].text)["input_ids"][0] == tok.cls_token_id
