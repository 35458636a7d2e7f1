"""The pretrained networks, loaded by name from each library's own weight registry, and the
image preprocessing the publishers' scripts apply before them.

- torchvision's weight enums: ResNet-152 (ImageNet, the weights Cadene's `pretrainedmodels`
  wraps, which HAN's `extract_rgb_feat.py` uses) and R(2+1)D-18 (Kinetics-400, HAN's
  `extract_3D_feat.py`); files in torch.hub's `checkpoints` folder.
- Hugging Face transformers: CLIP ViT-L/14 (`openai/clip-vit-large-patch14`, the model VALOR's
  `clip_preprocess.py` loads) and CLAP (`laion/clap-htsat-fused`, LAION's HTSAT fusion model in
  transformers; VALOR loads it through `laion_clap`, whose numpy<2 pin conflicts with ours);
  files in the Hugging Face cache.
- VGGish: the PyTorch port's two checkpoint files in torch.hub's `checkpoints` folder.
- I3D (RGB): video_features' checkpoint, placed by hand in torch.hub's `checkpoints` folder (no
  library publishes it).

Offline, a missing file is a `WeightsError` that names the file and where to place it.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avvp_dist.extract.i3d import I3D
from avvp_dist.extract.vggish import VGGish, VGGishEncoder

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # pretrainedmodels' resnet152 settings
KINETICS = ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989))  # HAN's scripts/utils.py
CLIP_NORM = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
TORCHVISION = {  # our name: (torchvision builder, weight enum)
    "resnet152": ("resnet152", "ResNet152_Weights.IMAGENET1K_V1"),
    "r2plus1d_18": ("video.r2plus1d_18", "R2Plus1D_18_Weights.KINETICS400_V1"),
}
HUGGING_FACE = {"clip": ("CLIPVisionModelWithProjection", "openai/clip-vit-large-patch14"),
                "clap": ("ClapAudioModelWithProjection", "laion/clap-htsat-fused")}
VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/"
VGGISH_FILES = ("vggish-10086976.pth", "vggish_pca_params-970ea276.pth")
I3D_FILE = "i3d_rgb.pt"


class WeightsError(RuntimeError):
    """A network's library or weights are not on this machine; the message says what to install
    or which file to place where."""


def hub_file(url: str) -> Path:
    """Where torch.hub keeps the file of `url` ($TORCH_HOME/hub/checkpoints/<file>)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def torchvision_trunk(name: str) -> nn.Module:
    """torchvision's `name` network with its registry weights, the classifier removed: (N, 2048)
    for resnet152 on (N, 3, 224, 224), (N, 512) for r2plus1d_18 on (N, 3, 8, 112, 112)."""
    builder, enum = TORCHVISION[name]
    try:
        import torchvision.models as models
        import torchvision.models.video  # noqa: F401  (registers the video builders)
    except Exception as e:  # ImportError, or a torchvision built for another torch
        raise WeightsError(f"{name}: torchvision does not import ({e}); install the torchvision release built for "
                           f"torch {torch.__version__} (docs/extract.md)") from None
    weights = models.get_weight(enum)
    path = hub_file(weights.url)
    try:
        net = models.get_model(builder.split(".")[-1], weights=weights)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad hash a RuntimeError
        raise WeightsError(f"{name}: weights {enum} not loaded ({e}); place {weights.url} at {path}") from None
    net.fc = nn.Identity()
    return net.eval()


def hugging_face_model(name: str) -> nn.Module:
    """transformers' model class for `name` (clip, clap) with its hub weights."""
    cls_name, repo = HUGGING_FACE[name]
    try:
        import transformers
    except ImportError as e:
        raise WeightsError(f"{name}: transformers is not installed ({e}): pip install 'avvp_dist[extract]'") from None
    try:
        return getattr(transformers, cls_name).from_pretrained(repo).eval()
    except OSError as e:
        from huggingface_hub.constants import HF_HUB_CACHE

        folder = Path(HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))
        raise WeightsError(f"{name}: {repo} not loaded ({e}); place the model's snapshot at {folder} "
                           f"(on a machine online: `hf download {repo}`, then copy that folder)") from None


def load_checkpoint(path: Path) -> dict:
    """A state dict of tensors or numpy arrays, with pickle's code execution off."""
    arrays = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.float32)),
              type(np.dtype(np.float64))]
    with torch.serialization.safe_globals(arrays):
        return torch.load(path, map_location="cpu", weights_only=True)


def vggish_encoder() -> VGGishEncoder:
    """VGGish with the PyTorch port's weights and the AudioSet PCA parameters."""
    paths = [hub_file(VGGISH_URL + f) for f in VGGISH_FILES]
    for url, path in zip((VGGISH_URL + f for f in VGGISH_FILES), paths):
        if not path.is_file():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(url, str(path), progress=False)
            except OSError as e:
                raise WeightsError(f"vggish: {path} not found and not downloadable ({e}); place {url} there") from None
    net = VGGish()
    net.load_state_dict(load_checkpoint(paths[0]))
    pca = load_checkpoint(paths[1])
    return VGGishEncoder(net.eval(), (torch.as_tensor(pca["pca_eigen_vectors"]), torch.as_tensor(pca["pca_means"])))


def preprocess(frames: np.ndarray, fn, chunk: int = 16) -> torch.Tensor:
    """`fn(to_float(chunk))` over (N, H, W, 3) uint8 frames, a few at a time (a full-resolution
    video in float32 would not fit in memory at once)."""
    return torch.cat([fn(to_float(frames[i:i + chunk])) for i in range(0, len(frames), chunk)])


def i3d_rgb() -> I3D:
    """The RGB I3D of video_features (hassony2's conversion of DeepMind's Kinetics weights),
    from torch.hub's `checkpoints` folder. Checkpoints from before PyTorch 0.4 lack batch norm's
    step counters; nothing else may be missing or extra."""
    path = hub_file(I3D_FILE)
    if not path.is_file():
        raise WeightsError(f"i3d: {path} not found; place there video_features' models/i3d/checkpoints/i3d_rgb.pt "
                           "(github.com/v-iashin/video_features; hassony2/kinetics_i3d_pytorch's model/model_rgb.pth)")
    net = I3D()
    missing, unexpected = net.load_state_dict(load_checkpoint(path), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsError(f"i3d: {path} is not I3D's RGB checkpoint (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net.eval()


def to_float(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1] (torchvision's ToTensor)."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 3, *size), bilinear with antialiasing (as PIL's and torchvision's Resize)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def resize_shorter(x: torch.Tensor, size: int) -> torch.Tensor:
    """The shorter side to `size`, the longer `int(size * long / short)` (torchvision's Resize(int))."""
    h, w = x.shape[-2:]
    return resize(x, (size, int(size * w / h)) if h <= w else (int(size * h / w), size))


def center_crop(x: torch.Tensor, size: int, floor: bool = False) -> torch.Tensor:
    """The central size x size window, offsets rounded as torchvision's CenterCrop rounds them
    (`floor`: rounded down, as video_features' TensorCenterCrop)."""
    h, w = x.shape[-2:]
    offset = (lambda d: d // 2) if floor else (lambda d: int(round(d / 2.0)))
    top, left = offset(h - size), offset(w - size)
    return x[..., top:top + size, left:left + size]


def normalize(x: torch.Tensor, stats: tuple) -> torch.Tensor:
    mean, std = (torch.tensor(v, dtype=x.dtype).reshape(1, 3, 1, 1) for v in stats)
    return (x - mean) / std


def run_batches(fn, x: torch.Tensor, device: torch.device, batch: int = 16) -> np.ndarray:
    """`fn` over `x` in batches on `device`, rows back as float32 numpy."""
    with torch.no_grad():
        return torch.cat([fn(x[i:i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)]).numpy()

