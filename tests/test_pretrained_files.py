"""`read_weights` on files that are damaged or unsafe: one sentence, never a pickle run."""

import pytest
import torch
from safetensors.torch import save_file

from bertlab.errors import ModelFileError, ModelNotFoundError
from bertlab.pretrained import read_weights


def _one_sentence(info, *parts):
    err, msg = info.value, str(info.value)
    assert "\n" not in msg and "Traceback" not in msg and 'File "' not in msg and msg.endswith("."), msg
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    return msg


class Shouts:
    """Unpickling this would call print: harmless, but exactly what weights_only refuses."""

    def __reduce__(self):
        return (print, ("a pickle ran code",))


def test_good_files_load(tmp_path):
    save_file({"w": torch.ones(2, 3)}, str(tmp_path / "model.safetensors"))
    assert torch.equal(read_weights(tmp_path)["w"], torch.ones(2, 3))
    (tmp_path / "model.safetensors").unlink()
    torch.save({"w": torch.ones(2)}, tmp_path / "pytorch_model.bin")
    assert torch.equal(read_weights(tmp_path)["w"], torch.ones(2))


@pytest.mark.parametrize("keep", [4, 40, 0.5])
def test_a_truncated_safetensors_file_is_one_sentence(tmp_path, keep):
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.randn(64, 64)}, str(path))
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(ModelFileError) as info:
        read_weights(tmp_path)
    _one_sentence(info, f"model.safetensors in {tmp_path} is damaged or incomplete (",
                  "download or save it again")


def test_a_pickle_is_refused_as_unsafe_and_never_run(tmp_path, capsys):
    torch.save({"w": torch.ones(2), "extra": Shouts()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelFileError) as info:
        read_weights(tmp_path)
    msg = _one_sentence(info, f"pytorch_model.bin in {tmp_path}", "refused as unsafe",
                        "Python objects beyond tensors", "bertlab never loads pickles",
                        "save_pretrained", "safe_serialization=True")
    assert "weights_only" not in msg and "a pickle ran code" not in capsys.readouterr().out


def test_a_truncated_bin_file_is_one_sentence(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.randn(64, 64)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelFileError) as info:
        read_weights(tmp_path)
    _one_sentence(info, f"pytorch_model.bin in {tmp_path} is damaged or incomplete (",
                  "download or save it again")


def test_a_folder_without_weights_is_still_model_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError) as info:
        read_weights(tmp_path)
    _one_sentence(info, "model.safetensors", "pytorch_model.bin")
