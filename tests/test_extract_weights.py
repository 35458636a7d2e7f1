"""Weights come from each library's registry; offline, the error names the file and where it
goes; checkpoint files are read with pickle's code execution off."""
import os
import pickle
import re
import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import torch

from avvp_dist.extract import encoders
from avvp_dist.extract.encoders import WeightsError


def test_vggish_offline_names_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, **kw):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as e:
        encoders.vggish_encoder()
    where = tmp_path / "torch" / "hub" / "checkpoints" / "vggish-10086976.pth"
    assert str(where) in str(e.value) and encoders.VGGISH_URL + "vggish-10086976.pth" in str(e.value)


def test_vggish_loads_placed_files(tmp_path, monkeypatch):
    """The port's files as placed by hand: a state dict, and the PCA parameters as numpy arrays."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    net = encoders.VGGish()
    torch.save(net.state_dict(), folder / "vggish-10086976.pth")
    rng = np.random.default_rng(0)
    pca = {"pca_eigen_vectors": rng.standard_normal((128, 128)), "pca_means": rng.standard_normal((128, 1))}
    torch.save(pca, folder / "vggish_pca_params-970ea276.pth")
    enc = encoders.vggish_encoder()
    x = torch.randn(2, 1, 96, 64)
    torch.testing.assert_close(enc.net(x), net.eval()(x))
    np.testing.assert_allclose(enc.pca_means.numpy(), pca["pca_means"].ravel(), rtol=1e-6)


class Payload:
    def __reduce__(self):
        return (os.system, ("echo unpickled",))


def test_checkpoints_refuse_code(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"w": Payload()}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        encoders.load_checkpoint(path)


def test_transformers_offline_names_the_cache_folder(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = "from avvp_dist.extract.encoders import hugging_face_model as h; h('clip')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0 and "WeightsError: clip: openai/clip-vit-large-patch14 not loaded" in r.stderr
    assert str(tmp_path / "hf" / "hub" / "models--openai--clip-vit-large-patch14") in r.stderr


def torchvision_imports() -> bool:
    try:
        import torchvision.models  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.skipif(torchvision_imports(), reason="torchvision imports here: the weights would be downloaded")
def test_torchvision_missing_says_what_to_install():
    with pytest.raises(WeightsError, match="resnet152: torchvision does not import .* built for torch " + re.escape(torch.__version__)):
        encoders.torchvision_trunk("resnet152")


@pytest.mark.skipif(not torchvision_imports(), reason="torchvision does not import beside this torch build "
                    "(PyPI's wheel for this CPU torch needs CUDA libraries)")
def test_torchvision_trunks_take_and_give_the_recipes_shapes():
    import torchvision.models as models

    net = models.resnet152()
    net.fc = torch.nn.Identity()
    assert net.eval()(torch.randn(2, 3, 224, 224)).shape == (2, 2048)
    net = models.video.r2plus1d_18()
    net.fc = torch.nn.Identity()
    assert net.eval()(torch.randn(2, 3, 8, 112, 112)).shape == (2, 512)


def test_same_padding_as_tensorflow():
    """max(k - s, 0) per dimension, the odd one at the end; F.pad lists W, H, T."""
    from avvp_dist.extract.i3d import same_padding

    assert same_padding((7, 7, 7), (2, 2, 2)) == (2, 3, 2, 3, 2, 3)
    assert same_padding((1, 3, 3), (1, 2, 2)) == (0, 1, 0, 1, 0, 0)
    assert same_padding((3, 3, 3), (1, 1, 1)) == (1, 1, 1, 1, 1, 1)
    assert same_padding((2, 2, 2), (2, 2, 2)) == (0, 0, 0, 0, 0, 0)


def test_i3d_features_and_checkpoint(tmp_path, monkeypatch):
    """Random weights: 24 frames of 224 x 224 give one 1024-d row; a checkpoint without batch
    norm's step counters (older PyTorch) loads, one of another network is refused by name."""
    from avvp_dist.extract.i3d import I3D

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError, match="i3d: .*checkpoints/i3d_rgb.pt not found; place there video_features'"):
        encoders.i3d_rgb()
    torch.manual_seed(0)
    net = I3D().eval()
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save({k: v for k, v in net.state_dict().items() if "num_batches_tracked" not in k}, folder / "i3d_rgb.pt")
    loaded = encoders.i3d_rgb()
    x = torch.rand(1, 3, 24, 224, 224) * 2 - 1
    with torch.no_grad():
        out = loaded(x)
        assert out.shape == (1, 1024)
        torch.testing.assert_close(out, net(x))
    torch.save(encoders.VGGish().state_dict(), folder / "i3d_rgb.pt")
    with pytest.raises(WeightsError, match="is not I3D's RGB checkpoint"):
        encoders.i3d_rgb()
