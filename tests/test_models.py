"""The networks take any input shape without hand-computed sizes, and the classifier learns."""

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from litlab.models import ConditionalGAN, CycleGAN, ImageClassifier
from litlab.models.base import build_net
from litlab.models.nets import CNN, MLP
from litlab.models.optim import GAN_ADAM, build_optimizer, build_scheduler
from litlab.train import train
from tests.helpers.config import train_config


@pytest.mark.parametrize(("channels", "size"), [(1, 8), (1, 28), (3, 32)])
def test_cnn_and_mlp_fit_any_image_shape(channels, size):
    x = torch.randn(4, channels, size, size)
    for net in (
        CNN(channels, size, 7, conv_channels=[8, 16, 16, 16, 16], dense_units=[32, 32, 32, 32, 32]),
        MLP(channels, size, 7, hidden_sizes=[32, 16]),
    ):
        assert net(x).shape == (4, 7)


def test_cnn_depth_and_widths_are_arguments():
    net = CNN(
        3,
        32,
        100,
        conv_channels=[256] * 5,
        kernel_size=[3, 3, 5, 5, 3],
        dense_units=[256] * 5,
        batch_norm=False,
        pool="avg",
        dropout=0.5,
        conv_dropout=0.1,
    )
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [256] * 5 and [c.kernel_size[0] for c in convs] == [3, 3, 5, 5, 3]
    assert len(linears) == 6 and linears[-1].out_features == 100  # five hidden layers plus the output layer
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    with pytest.raises(ValueError, match="kernel_size has 2 entries but the network has 5 layers"):
        CNN(conv_channels=[8] * 5, kernel_size=[3, 3])
    with pytest.raises(ValueError, match="Unknown pooling 'min'"):
        CNN(pool="min")


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "sgd"])
def test_every_optimizer_builds(name):
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), name=name, lr=0.01, momentum=0.9)
    assert type(opt).__name__.lower() == name
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9


@pytest.mark.parametrize(
    ("name", "cls"), [("cosine", "CosineAnnealingLR"), ("onecycle", "OneCycleLR"), ("plateau", "ReduceLROnPlateau")]
)
def test_every_scheduler_builds(name, cls):
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=0.01)
    assert type(build_scheduler(opt, 100, name=name)["scheduler"]).__name__ == cls
    assert build_scheduler(opt, 100, name="none") is None


def test_classifier_saves_plain_hyperparameters():
    model = ImageClassifier(
        {"_target_": "litlab.models.nets.MLP", "image_size": 8, "hidden_sizes": [16]},
        optimizer={"name": "sgd", "lr": 0.1},
        label_smoothing=0.1,
    )
    assert isinstance(model.net, MLP)
    assert model.hparams.net["hidden_sizes"] == [16] and model.hparams.optimizer["name"] == "sgd"


def test_training_metrics_fed_in_chunks_match_the_per_step_values():
    model = ImageClassifier({"_target_": "litlab.models.nets.MLP", "image_size": 8, "hidden_sizes": [16]})
    generator = torch.Generator().manual_seed(0)
    steps = [
        (
            torch.rand((), generator=generator),
            torch.randint(0, 10, (32,), generator=generator),
            torch.randint(0, 10, (32,), generator=generator),
        )
        for _ in range(150)  # two full chunks and a remainder
    ]
    for loss, preds, targets in steps:
        model.track_train_step(loss, preds, targets)
    assert len(model._train_outputs) == 150 % 64  # the full chunks already went to the metrics
    model._update_train_metrics()
    losses, preds, targets = zip(*steps, strict=True)
    assert torch.isclose(model.train_loss.compute(), torch.stack(losses).mean())
    assert torch.isclose(model.train_acc.compute(), (torch.cat(preds) == torch.cat(targets)).float().mean())


def test_classifier_refuses_networks_outside_the_whitelist():
    with pytest.raises(Exception, match="os.system"):
        ImageClassifier({"_target_": "os.system", "command": "echo unsafe"})


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_classifier_learns_generated_mnist(model, mnist_root, tmp_path):
    cfg = train_config(
        [
            f"experiment=mnist_{model}",
            f"paths.data_dir={mnist_root}",
            "data.download=false",
            "trainer.max_epochs=4",
            "logger=csv",
            "data.batch_size=32",
        ],
        tmp_path,
    )
    metrics, objects = train(cfg)
    history = pd.read_csv(objects["trainer"].logger.experiment.metrics_file_path)
    train_losses = history["train/loss"].dropna().tolist()
    assert train_losses[-1] < train_losses[0] * 0.5
    assert metrics["test/acc"] > 0.8  # ten classes: chance is 0.1
    # val/acc_best is the best epoch's val/acc, not the last one's
    assert metrics["val/acc_best"] == pytest.approx(history["val/acc"].dropna().max())


TINY_MLP = {"_target_": "litlab.models.nets.MLP", "image_size": 8, "hidden_sizes": [16]}


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_label_smoothing_reaches_the_training_and_evaluation_loss(smoothing):
    torch.manual_seed(0)
    model = ImageClassifier(TINY_MLP, label_smoothing=smoothing).eval()
    x, y = torch.randn(5, 1, 8, 8), torch.tensor([0, 3, 3, 7, 9])
    log_p = torch.log_softmax(model(x), dim=1)
    # (1 - eps) * CE(y) + eps * the mean of -log p over the classes
    expected = (1 - smoothing) * -log_p[torch.arange(5), y].mean() + smoothing * -log_p.mean(1).mean()
    loss, preds, targets = model.model_step((x, y))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(preds, log_p.argmax(1)) and torch.equal(targets, y)
    assert model.training_step((x, y), 0).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dims": (3, 8, 8), "num_classes": 10}, r"expects inputs of shape \(1, 8, 8\) but the data gives \(3, 8, 8\)"),
        ({"dims": (1, 8, 8), "num_classes": 5}, "predicts 10 classes but the data has 5"),
    ],
)
def test_classifier_refuses_data_it_does_not_fit(data, message):
    from types import SimpleNamespace

    model = ImageClassifier(TINY_MLP)
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(**data))
    with pytest.raises(ValueError, match=message):
        model.setup("fit")
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(dims=(1, 8, 8), num_classes=10))
    model.setup("fit")  # data that fits passes


MODULE_NETS = {
    ConditionalGAN: {
        "generator": {"_target_": "litlab.models.nets.ConditionalGenerator", "latent_dim": 8, "base_channels": 4},
        "discriminator": {"_target_": "litlab.models.nets.ConditionalDiscriminator", "base_channels": 4},
    },
    CycleGAN: {
        "generator": {"_target_": "litlab.models.nets.ResnetGenerator", "in_channels": 1, "out_channels": 1,
                      "base_channels": 4, "num_blocks": 1},
        "discriminator": {"_target_": "litlab.models.nets.PatchDiscriminator", "in_channels": 1, "base_channels": 4},
    },
    ImageClassifier: {"net": {"_target_": "litlab.models.nets.MLP", "image_size": 8, "hidden_sizes": [16]}},
}  # fmt: skip


@pytest.mark.parametrize("cls", list(MODULE_NETS), ids=lambda cls: cls.__name__)
def test_every_module_saves_its_settings_the_same_way(cls):
    nets = {name: OmegaConf.create(spec) for name, spec in MODULE_NETS[cls].items()}
    model = cls(**nets)
    default = {"name": "adam"} if cls is ImageClassifier else GAN_ADAM
    assert model.hparams.optimizer == default and model.hparams.optimizer is not default
    for name, spec in MODULE_NETS[cls].items():
        assert type(model.hparams[name]) is dict and model.hparams[name] == spec  # plain, for weights_only=True

    first = next(iter(MODULE_NETS[cls]))
    module = build_net(MODULE_NETS[cls][first])
    given = cls(**{**nets, first: module}, optimizer={"name": "sgd", "lr": 0.1})
    assert first not in given.hparams and given.hparams.optimizer == {"name": "sgd", "lr": 0.1}

    with pytest.raises(ValueError, match="torch.optim has no optimizer class of that name"):
        cls(**nets, optimizer={"name": "torch.optim.Adamm"})
