import sys
import types

import pytest
import torch
from torchmetrics.functional.image import lpips as torchmetrics_lpips

from any4d.eval import LpipsVGG, image_metrics
from any4d.eval.lpips import vgg16_features


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    """Random VGG16 weights saved as torchvision's state dict ("features.*", "classifier.*")."""
    torch.manual_seed(0)
    features = vgg16_features()
    for module in features:
        if isinstance(module, torch.nn.Conv2d):
            # He-style init keeps activations alive through 13 layers
            torch.nn.init.normal_(module.weight, std=(2.0 / (9 * module.in_channels)) ** 0.5)
            torch.nn.init.normal_(module.bias, std=0.01)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)  # ignored, as in torchvision's file
    path = tmp_path_factory.mktemp("weights") / "vgg16.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def lpips(vgg16_file):
    return LpipsVGG.from_files(vgg16_file)


def _images(seed, n=2, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def test_lpips_equals_torchmetrics_lpips_with_the_same_vgg16(vgg16_file, lpips, monkeypatch):
    # torchvision does not load beside CPU torch here; hand torchmetrics the same VGG16 through a
    # stand-in module, so its own LPIPS code (scaling, normalisation, heads, averaging) runs.
    state = torch.load(vgg16_file, weights_only=True)
    features = vgg16_features()
    features.load_state_dict(
        {k[len("features.") :]: v for k, v in state.items() if "features" in k}
    )
    fake = types.ModuleType("torchvision")
    fake.models = types.SimpleNamespace(
        vgg16=lambda weights=None: types.SimpleNamespace(features=features)
    )
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setattr(torchmetrics_lpips, "_TORCHVISION_AVAILABLE", True)
    reference = torchmetrics_lpips._NoTrainLpips(net="vgg", pnet_rand=True)

    a, b = _images(0), _images(1)
    ours = lpips(a, b)
    expected = reference(a, b).flatten()
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)
    assert (ours > 0).all()


def test_lpips_of_identical_images_is_zero(lpips):
    a = _images(2)
    torch.testing.assert_close(lpips(a, a), torch.zeros(2))


def test_image_metrics_add_lpips_of_the_scored_frames(lpips):
    target = _images(3, n=4)[None]  # (1, 4, 3, H, W)
    pred = _images(4, n=4)[None]
    metrics = image_metrics(pred, target, context=(0, -1), lpips=lpips)
    direct = lpips(pred[0, 1:3], target[0, 1:3]).mean()
    assert metrics["lpips"] == pytest.approx(float(direct), rel=1e-5)


def test_missing_vgg16_weights_raise_an_error_that_says_how_to_provide_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"never downloads.*torchvision\.models\.vgg16"):
        LpipsVGG.from_files(tmp_path / "absent.pth")


def test_a_file_without_vgg16_features_is_rejected(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no 'features.\\*' tensors"):
        LpipsVGG.from_files(tmp_path / "other.pth")
