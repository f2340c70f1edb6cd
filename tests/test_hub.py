import socket

import huggingface_hub
import huggingface_hub.constants
import pytest
import torch

from bertlab import data, embeddings, hub, model, pretrained
from bertlab.errors import ModelNotFoundError
from bertlab.tokenization import WordPieceTokenizer


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Offline, with an empty Hugging Face cache (so no machine's cached model changes a result)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def no_download(monkeypatch):
    """Fail the test if a name is sent to the Hub."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"snapshot_download called with {args}")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)


def _model_folder(path, files=("config.json",)):
    path.mkdir(parents=True, exist_ok=True)
    for name in files:
        (path / name).write_text("{}")
    return path


# -- the resolver's name rules ---------------------------------------------------------


@pytest.mark.parametrize("name", ["minilm", "MiniLM", " minilm ", "all-MiniLM-L6-v2",
                                  "sentence-transformers/all-MiniLM-L6-v2"])
def test_bundled_aliases_are_the_package_folder(name, no_download):
    assert hub.model_dir(name) == hub.bundled_model_dir()
    assert (hub.bundled_model_dir() / "model.safetensors").exists()
    assert hub.model_dir() == hub.bundled_model_dir() and hub.DEFAULT_MODEL == "minilm"


def test_a_folder_with_config_json_is_that_folder(tmp_path, no_download):
    folder = _model_folder(tmp_path / "mine")
    assert hub.model_dir(str(folder)) == folder
    assert hub.model_dir(folder) == folder  # a Path works too


def test_an_existing_folder_wins_over_a_hub_id_spelled_the_same(tmp_path, monkeypatch, no_download):
    monkeypatch.chdir(tmp_path)
    _model_folder(tmp_path / "my-org" / "my-model.v2")
    assert hub.is_hub_id("my-org/my-model.v2")
    found = hub.model_dir("my-org/my-model.v2")
    assert found.resolve() == (tmp_path / "my-org" / "my-model.v2").resolve()


def test_a_folder_without_config_json_is_one_clear_error(tmp_path, no_download):
    with pytest.raises(ModelNotFoundError) as info:
        hub.model_dir(str(tmp_path))
    assert str(info.value) == str(hub.not_found(
        str(tmp_path), f"the folder {tmp_path} has no config.json, so it is not a Hugging Face model folder"))
    assert '"minilm"' in str(info.value) and "local model folder" in str(info.value)


@pytest.mark.parametrize("name", ["./no-such-model", "/no/such/model", "~/no-such-model-xyz",
                                  "a/b/c", "../up", "C:\\models\\bert", "my model"])
def test_a_missing_path_is_an_error_and_never_a_download(name, no_download):
    assert not hub.is_hub_id(name)
    with pytest.raises(ModelNotFoundError, match="there is no folder .*\"minilm\""):
        hub.model_dir(name)


def test_a_file_and_an_empty_name_are_errors(tmp_path, no_download):
    (tmp_path / "model.safetensors").write_text("")
    with pytest.raises(ModelNotFoundError, match="is a file, not a model folder"):
        hub.model_dir(str(tmp_path / "model.safetensors"))
    for bad in ("", "  ", None):
        with pytest.raises(ModelNotFoundError, match="non-empty string"):
            hub.model_dir(bad)


@pytest.mark.parametrize("name, hub_id", [
    ("BAAI/bge-small-en-v1.5", True), ("bert-base-uncased", True), ("gpt2", True),
    ("google-bert/bert-base-uncased", True), ("org_1/name_2", True),
    ("./model", False), ("/abs/model", False), ("~/model", False), ("a/b/c", False),
    ("a/..", False), ("..", False), ("x.", False), ("-x", False), ("a//b", False),
    ("C:models", False), ("a\\b", False), ("ünï/côdé", False), ("", False),
])
def test_hub_id_shape(name, hub_id):
    assert hub.is_hub_id(name) is hub_id


def test_dotted_hub_id_offline_is_the_one_not_found_error(offline):
    calls = []
    real = huggingface_hub.snapshot_download

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(huggingface_hub, "snapshot_download", spy)
        with pytest.raises(ModelNotFoundError) as info:
            hub.model_dir("BAAI/bge-small-en-v1.5")
    # it was looked up as a Hub id, in the cache only (no network), not refused as a path
    assert calls == [(("BAAI/bge-small-en-v1.5",), {"local_files_only": True,
                                                     "ignore_patterns": hub._IGNORED_FILES})]
    message = str(info.value)
    assert message.startswith("Model 'BAAI/bge-small-en-v1.5' not found: it is not a local folder")
    assert "offline" in message and '"minilm"' in message and "all-MiniLM-L6-v2" in message
    assert "local model folder" in message and "there is no folder" not in message


def test_online_hub_id_downloads_once_and_a_failure_is_the_same_error(tmp_path, monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    snapshot = _model_folder(tmp_path / "snapshot")
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda name, **kw: calls.append((name, kw)) or str(snapshot))
    assert hub.model_dir("BAAI/bge-small-en-v1.5") == snapshot
    assert calls == [("BAAI/bge-small-en-v1.5", {"local_files_only": False,
                                                  "ignore_patterns": hub._IGNORED_FILES})]

    def fail(name, **kw):
        raise OSError("no route to host")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    with pytest.raises(ModelNotFoundError, match=r"Hub did not give it \(OSError.*\"minilm\""):
        hub.model_dir("no-such-org/no-such-model")


# -- every loader: the same error for the same missing name ------------------------------


def _loaders():
    return {
        "hub.load_tokenizer": hub.load_tokenizer,
        "hub.load_encoder": hub.load_encoder,
        "hub.load_classifier": hub.load_classifier,
        "hub.load_sentence_transformer": hub.load_sentence_transformer,
        "pretrained.model_folder": pretrained.model_folder,
        "model.model_folder": model.model_folder,
        "model.BertConfig.from_pretrained": model.BertConfig.from_pretrained,
        "model.BertModel.from_pretrained": model.BertModel.from_pretrained,
        "embeddings.load": embeddings.load,
        "WordPieceTokenizer.from_pretrained": WordPieceTokenizer.from_pretrained,
    }


@pytest.mark.parametrize("case", ["hub id", "missing folder", "folder without config.json"])
def test_every_loader_raises_the_same_error_for_the_same_name(case, tmp_path, offline):
    name = {"hub id": "BAAI/bge-small-en-v1.5", "missing folder": str(tmp_path / "missing"),
            "folder without config.json": str(tmp_path)}[case]
    with pytest.raises(ModelNotFoundError) as info:
        hub.model_dir(name)
    expected = str(info.value)
    for label, load in _loaders().items():
        with pytest.raises(ModelNotFoundError) as got:
            load(name)
        assert type(got.value) is ModelNotFoundError, label
        assert str(got.value) == expected, label


def test_model_folder_is_the_one_resolver():
    assert pretrained.model_folder is hub.model_dir and model.model_folder is hub.model_dir


# -- loading ---------------------------------------------------------------------------


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


def test_a_folder_that_cannot_be_loaded_is_the_same_error_class(tmp_path):
    _model_folder(tmp_path, files=("config.json",))  # "{}": no model_type, no weights
    with pytest.raises(ModelNotFoundError, match="could not be loaded .*\"minilm\""):
        hub.load_encoder(str(tmp_path))


def test_default_path_never_opens_a_network_connection(monkeypatch):
    """With the offline variables unset, the bundled model and data still load without a socket."""
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
