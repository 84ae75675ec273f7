from urllib.error import URLError

import pytest
import torch
import torchvision
from torch import nn

from litlab.checkpoints.record import offline_net_spec
from litlab.models.nets.resnet import ResNet, WeightsNotFoundError


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """A torchvision resnet18 state dict saved to a local file, as a user would download it."""
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()
    path = tmp_path_factory.mktemp("weights") / "resnet18-local.pth"
    torch.save(reference.state_dict(), path)
    return path, reference


def test_cifar_stem_one_channel_shapes():
    net = ResNet(arch="resnet18", in_channels=1, image_size=28, num_classes=10, stem="cifar")
    assert net.model.conv1.kernel_size == (3, 3) and net.model.conv1.stride == (1, 1)
    assert isinstance(net.model.maxpool, nn.Identity)
    out = net(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10) and out.dtype == torch.float32
    assert not net.pretrained and not net.imagenet_input


def test_local_weights_file_loads_and_input_is_resized(resnet18_file):
    path, reference = resnet18_file
    net = ResNet(arch="resnet18", in_channels=3, num_classes=7, weights=str(path), resolution=64)
    assert net.pretrained and net.imagenet_input
    assert torch.equal(net.model.conv1.weight, reference.conv1.weight)  # auto stem keeps the pretrained conv
    assert torch.equal(net.model.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    assert torch.equal(net.model.layer1[0].bn1.running_var, reference.layer1[0].bn1.running_var)
    assert net.head.out_features == 7
    seen = {}
    net.model.conv1.register_forward_hook(lambda module, args, out: seen.update(shape=args[0].shape))
    net.eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert seen["shape"] == (2, 3, 64, 64)


def test_imagenet_normalisation_replaces_the_data_statistics(resnet18_file):
    path, _ = resnet18_file
    net = ResNet(arch="resnet18", in_channels=3, weights=str(path), data_mean=(0.5, 0.5, 0.5), data_std=(0.25,) * 3)
    seen = {}
    net.model.conv1.register_forward_hook(lambda module, args, out: seen.update(x=args[0]))
    pixels = torch.rand(1, 3, 224, 224)
    net.eval()
    net((pixels - 0.5) / 0.25)  # what the datamodule hands over
    expected = (pixels - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(seen["x"], expected, rtol=1e-5, atol=1e-5)


def test_one_channel_input_sums_the_pretrained_rgb_filters(resnet18_file):
    path, reference = resnet18_file
    net = ResNet(arch="resnet18", in_channels=1, weights=str(path), data_mean=(0.1307,), data_std=(0.3081,))
    torch.testing.assert_close(net.model.conv1.weight, reference.conv1.weight.sum(dim=1, keepdim=True))
    net.eval()
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_missing_download_names_the_file_and_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst, *args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsNotFoundError) as error:
        ResNet(arch="resnet50", weights="IMAGENET1K_V2")
    message = str(error.value)
    assert "resnet50-11ad3fa6.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "model.net.weights=/path/to/resnet50-11ad3fa6.pth" in message
    assert "\n" not in message


def test_bad_weights_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="not a ResNet18_Weights name"):
        ResNet(arch="resnet18", weights="IMAGENET1K_V2")  # V2 exists for resnet50 only
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        ResNet(arch="resnet18", weights=str(tmp_path / "missing.pth"))
    wrong = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), wrong)
    with pytest.raises(ValueError, match="do not fit a torchvision resnet18"):
        ResNet(arch="resnet18", weights=str(wrong))


def test_pinned_spec_rebuilds_the_same_network_without_the_weights(resnet18_file):
    path, _ = resnet18_file
    spec = {"_target_": "litlab.models.nets.ResNet", "arch": "resnet18", "weights": str(path), "resolution": 64}
    pinned = offline_net_spec(spec)
    assert pinned == {**spec, "weights": None, "stem": "imagenet", "imagenet_input": True}
    rebuilt = ResNet(**{k: v for k, v in pinned.items() if k != "_target_"})
    assert rebuilt.model.conv1.kernel_size == (7, 7) and rebuilt.imagenet_input and not rebuilt.pretrained
