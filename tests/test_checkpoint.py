import pickle

import pytest
import torch

from cifar.checkpoint import load_model, read_checkpoint, save_checkpoint
from cifar.errors import CheckpointError
from cifar.models import create


def test_roundtrip_keeps_weights_and_metadata(trained, tmp_path):
    model, config, history = trained
    path = save_checkpoint(tmp_path / "m.pt", model, "tutorial", config=config.as_dict(), history=history,
                           metrics={"test_top1": history[-1]["test_top1"]}, data_fingerprint="abc")
    loaded, payload = load_model(path)
    assert not loaded.training
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert payload["model"] == "tutorial"
    assert payload["config"]["epochs"] == config.epochs
    assert payload["data_fingerprint"] == "abc"
    assert payload["history"] == history
    assert set(payload["versions"]) >= {"torch", "onnxruntime", "python"}


def test_wrapped_model_saves_plain_keys(trained, tmp_path):
    model, _, _ = trained
    wrapped = torch.nn.DataParallel(model)
    save_checkpoint(tmp_path / "m.pt", wrapped, "tutorial")
    keys = read_checkpoint(tmp_path / "m.pt")["state_dict"].keys()
    assert "conv1.weight" in keys
    assert not any(k.startswith("module.") for k in keys)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_prefixed_state_dict_loads(prefix, tmp_path):
    state_dict = {prefix + k: v for k, v in create("tutorial").state_dict().items()}
    torch.save(state_dict, tmp_path / "prefixed.pt")
    model, payload = load_model(tmp_path / "prefixed.pt")
    assert payload["model"] == "tutorial"
    assert torch.equal(model.conv1.weight, state_dict[prefix + "conv1.weight"])


def test_other_architecture_names_both(trained, tmp_path):
    model, _, _ = trained
    save_checkpoint(tmp_path / "tutorial.pt", model, "tutorial")
    with pytest.raises(CheckpointError, match="contains a 'tutorial' model, but 'resnet' was requested"):
        load_model(tmp_path / "tutorial.pt", "resnet")

    torch.save(create("resnet").state_dict(), tmp_path / "bare-resnet.pt")
    with pytest.raises(CheckpointError, match="contains weights of resnet, not of 'tutorial'"):
        load_model(tmp_path / "bare-resnet.pt", "tutorial")


def test_unknown_architecture_rejected(tmp_path):
    torch.save({"layer.weight": torch.zeros(2, 2)}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="bare state_dict whose keys match none of the models"):
        load_model(tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="contains weights of an unknown architecture, not of 'tutorial'"):
        load_model(tmp_path / "odd.pt", "tutorial")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_corrupt_file_rejected(content, tmp_path):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*corrupt\.pt"):
        load_model(path)


def test_text_file_error_skips_torch_advice(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("# not a checkpoint\n")
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    message = str(error.value)
    assert "(UnpicklingError: Unsupported operand" in message
    assert "weights_only" not in message
    assert len(message) - len(str(path)) < 160


def test_folder_named_as_folder(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder, not a file"):
        load_model(tmp_path)


def test_truncated_checkpoint_rejected(trained, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", trained[0], "tutorial")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model(path)


def test_random_bytes_called_corrupt(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(bytes(range(256)) * 16)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert "corrupt or not a PyTorch checkpoint" in str(error.value)
    assert "Python objects" not in str(error.value)


def test_every_one_byte_file_called_corrupt(tmp_path):
    # Some first bytes make torch.load fail with IndexError or other types outside the usual set.
    path = tmp_path / "one-byte.pt"
    for value in range(256):
        path.write_bytes(bytes([value]))
        with pytest.raises(CheckpointError, match="corrupt or not a PyTorch checkpoint"):
            load_model(path)


def test_empty_file_error_names_the_cause(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert "(EOFError)" in str(error.value)


def test_arbitrary_pickle_not_executed(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Payload()}, f, protocol=2)
    with pytest.raises(CheckpointError, match=r"contains a print object, which torch.load\(weights_only=True\) rejects"):
        load_model(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pt")
