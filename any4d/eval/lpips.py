"""LPIPS with the VGG16 backbone (Zhang et al., CVPR 2018, weights v0.1), as DFoT scores it.

The same network as torchmetrics' ``LearnedPerceptualImagePatchSimilarity(net_type="vgg")`` and
the ``lpips`` package, written out here so that it needs no torchvision (whose PyPI wheels do
not load beside a CPU build of torch) and never downloads: the VGG16 ImageNet weights come from
a local file, and the linear heads from the copy of LPIPS v0.1 that torchmetrics ships.

Getting the VGG16 weights once, on a machine with internet and torchvision::

    import torch, torchvision
    torch.save(torchvision.models.vgg16(weights="IMAGENET1K_V1").state_dict(), "vgg16.pth")

(the same tensors as torchvision's cached ``vgg16-397923af.pth``, which also works as is).
"""

from __future__ import annotations

import os
from importlib import resources

import torch
from torch import Tensor, nn

# torchvision's VGG16 "features": channel counts of the 3×3 convolutions, "M" a 2×2 max pool.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# LPIPS reads the ReLU outputs relu1_2, relu2_2, relu3_3, relu4_3, relu5_3: the features after
# these torchvision layer indices (exclusive ends of the five slices).
_TAPS = (4, 9, 16, 23, 30)
_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS' input normalisation of [-1, 1] images ("ScalingLayer").
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def vgg16_features() -> nn.Sequential:
    """torchvision's ``vgg16().features`` up to relu5_3, with the same module indices (so its
    state dict keys are ``"0.weight"``, ``"2.weight"``, … as in torchvision's ``features``)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG16:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
            channels = int(item)
    return nn.Sequential(*layers)


def _bundled_linear_weights() -> str:
    """Path of the LPIPS v0.1 VGG linear heads that torchmetrics ships."""
    return str(resources.files("torchmetrics") / "functional/image/lpips_models/vgg.pth")


class LpipsVGG(nn.Module):
    """LPIPS distance (VGG16), lower = more similar.

    Build with ``LpipsVGG.from_files(vgg16_path)``; call ``lpips(a, b)`` with images (N, 3, H, W)
    in ``[-1, 1]``; returns (N,) distances.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg16_features()
        self.linear = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in _CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT)[None, :, None, None], persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE)[None, :, None, None], persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_files(
        cls, vgg16_weights: str | os.PathLike, linear_weights: str | os.PathLike | None = None
    ) -> LpipsVGG:
        """Load the backbone from a local torchvision VGG16 state dict (module docstring) and
        the linear heads from ``linear_weights`` (default: torchmetrics' bundled LPIPS v0.1).

        Raises ``FileNotFoundError`` saying how to obtain the VGG16 file when it is absent.
        """
        path = os.fspath(vgg16_weights)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"LPIPS needs the VGG16 ImageNet weights as a local file; none at {path!r}. "
                "any4d never downloads them: on a machine with internet run `torch.save("
                'torchvision.models.vgg16(weights="IMAGENET1K_V1").state_dict(), "vgg16.pth")` '
                "(or copy torchvision's cached vgg16-397923af.pth) and pass that path."
            )
        lpips = cls()
        state = torch.load(path, map_location="cpu", weights_only=True)
        features = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        if not features:
            raise ValueError(
                f"{path!r} holds no 'features.*' tensors (expected torchvision's VGG16 state "
                f"dict; its first keys are {list(state)[:3]})"
            )
        lpips.features.load_state_dict(features)  # strict: every conv layer must be there
        linear_path = _bundled_linear_weights() if linear_weights is None else linear_weights
        heads = torch.load(os.fspath(linear_path), map_location="cpu", weights_only=True)
        for index, layer in enumerate(lpips.linear):
            # "lin{k}.model.1.weight": index 1 because the original head has a Dropout at 0.
            layer.weight.data.copy_(heads[f"lin{index}.model.1.weight"])
        return lpips

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """a, b: (N, 3, H, W) images in [-1, 1]. Returns (N,) LPIPS distances."""
        if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
            raise ValueError(
                f"LPIPS got shapes {tuple(a.shape)} and {tuple(b.shape)} (expected the same "
                "(N, 3, H, W))"
            )
        batch = a.shape[0]
        x = (torch.cat([a, b]) - self.shift) / self.scale
        distance = torch.zeros(batch, dtype=a.dtype, device=a.device)
        start = 0
        for tap, linear in zip(_TAPS, self.linear, strict=True):
            x = self.features[start:tap](x)
            start = tap
            unit = x / torch.sqrt(x.square().sum(1, keepdim=True) + 1e-8)  # unit channel vectors
            difference = (unit[:batch] - unit[batch:]).square()
            distance = distance + linear(difference).mean((1, 2, 3))
        return distance
