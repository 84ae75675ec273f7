import logging

import pytest
import torch
import torchvision
from lightning import Trainer

from litlab.data import MNISTDataModule
from litlab.models import TransferClassifier


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return str(path)


def resnet_spec(weights: str | None) -> dict:
    # Pretrained input at 32 pixels rather than 224: the same code path, cheap enough for a test.
    return {
        "_target_": "litlab.models.nets.ResNet",
        "arch": "resnet18",
        "in_channels": 1,
        "image_size": 28,
        "num_classes": 10,
        "weights": weights,
        "stem": "imagenet",
        "resolution": 32,
    }


def fit_steps(model, mnist_root, steps: int = 3) -> Trainer:
    data = MNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=32)
    trainer = Trainer(
        accelerator="cpu",
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    return trainer


def test_linear_probe_trains_only_the_head(weights_file, mnist_root):
    model = TransferClassifier(
        resnet_spec(weights_file), mode="linear", optimizer={"_target_": "torch.optim.Adam", "lr": 0.01}
    )
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    trainer = fit_steps(model, mnist_root)
    after = model.net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"model.fc.weight", "model.fc.bias"}  # batch-norm running statistics included
    head = {id(p) for p in model.net.head.parameters()}
    optimized = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert optimized == head
    model.train()
    assert model.net.head.training and not model.net.model.layer1.training


def test_finetune_gives_the_backbone_a_lower_learning_rate(weights_file, mnist_root):
    model = TransferClassifier(
        resnet_spec(weights_file),
        mode="finetune",
        backbone_lr_scale=0.1,
        optimizer={"_target_": "torch.optim.SGD", "lr": 0.05},
        scheduler=None,
    )
    before = model.net.model.layer1[0].conv1.weight.clone()
    trainer = fit_steps(model, mnist_root, steps=2)
    backbone, head = trainer.optimizers[0].param_groups
    assert backbone["lr"] == pytest.approx(0.005) and head["lr"] == pytest.approx(0.05)
    assert len(backbone["params"]) + len(head["params"]) == len(list(model.parameters()))
    assert not torch.equal(before, model.net.model.layer1[0].conv1.weight)


def test_without_weights_the_teacher_trains_from_scratch_and_says_so(mnist_root, caplog):
    model = TransferClassifier(resnet_spec(None), mode="linear")
    assert all(p.requires_grad for p in model.parameters())
    with caplog.at_level(logging.WARNING):
        fit_steps(model, mnist_root, steps=1)
    assert "trains the whole network from scratch" in caplog.text


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="choose one of linear, finetune"):
        TransferClassifier(resnet_spec(None), mode="probe")


def test_imagenet_input_undoes_the_datamodules_convention_and_keeps_it_in_checkpoints(
    weights_file, mnist_root, tmp_path
):
    model = TransferClassifier(resnet_spec(weights_file), mode="linear")
    assert model.net.scale.item() == pytest.approx(1 / 0.226)  # before any data: [0, 1] inputs assumed
    trainer = fit_steps(model, mnist_root, steps=1)
    # MNIST's standardised batch x = (p / 255 - 0.1307) / 0.3081 becomes ImageNet's (p / 255 - m) / s:
    imagenet_mean, imagenet_std = sum((0.485, 0.456, 0.406)) / 3, sum((0.229, 0.224, 0.225)) / 3
    assert model.net.scale.item() == pytest.approx(0.3081 / imagenet_std)
    assert model.net.shift.item() == pytest.approx((0.1307 - imagenet_mean) / imagenet_std)
    trainer.save_checkpoint(tmp_path / "teacher.ckpt")
    loaded = TransferClassifier.load_from_checkpoint(tmp_path / "teacher.ckpt", weights_only=True)
    assert torch.equal(loaded.net.scale, model.net.scale) and torch.equal(loaded.net.shift, model.net.shift)
