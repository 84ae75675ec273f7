"""The networks take any input shape without hand-computed sizes, and the classifier learns."""

from types import SimpleNamespace

import lightning as L
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import Logger
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from litlab import CONFIG_DIR
from litlab.models import ConditionalGAN, CycleGAN, ImageClassifier
from litlab.models.nets import CNN, MLP
from litlab.models.nets.build import build_net
from litlab.models.optim import ADAM, GAN_ADAM, configure
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


PRESETS = CONFIG_DIR / "model"


@pytest.mark.parametrize(
    ("name", "cls"),
    [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop),
     ("sgd", torch.optim.SGD), ("sparse_sgd", torch.optim.SGD), ("sparse_adam", torch.optim.SparseAdam)],
)  # fmt: skip
def test_every_optimizer_preset_builds(name, cls):
    spec = OmegaConf.to_container(OmegaConf.load(PRESETS / "optimizer" / f"{name}.yaml"))
    opt = configure(torch.nn.Linear(2, 2).parameters(), spec)["optimizer"]
    assert type(opt) is cls
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9


@pytest.mark.parametrize(
    ("name", "cls"), [("cosine", "CosineAnnealingLR"), ("onecycle", "OneCycleLR"), ("plateau", "ReduceLROnPlateau")]
)
def test_every_scheduler_preset_builds(name, cls):
    spec = OmegaConf.to_container(OmegaConf.load(PRESETS / "scheduler" / f"{name}.yaml"))
    trainer = SimpleNamespace(estimated_stepping_batches=100, max_epochs=10)
    built = configure(torch.nn.Linear(2, 2).parameters(), ADAM, spec, trainer)
    assert type(built["lr_scheduler"]["scheduler"]).__name__ == cls
    none = OmegaConf.to_container(OmegaConf.load(PRESETS / "scheduler" / "none.yaml"))
    assert "lr_scheduler" not in configure(torch.nn.Linear(2, 2).parameters(), ADAM, none, trainer)


def test_classifier_saves_plain_hyperparameters():
    model = ImageClassifier(
        {"_target_": "litlab.models.nets.MLP", "image_size": 8, "hidden_sizes": [16]},
        optimizer={"_target_": "torch.optim.SGD", "lr": 0.1},
        label_smoothing=0.1,
    )
    assert isinstance(model.net, MLP)
    assert model.hparams.net["hidden_sizes"] == [16] and model.hparams.optimizer["_target_"] == "torch.optim.SGD"


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


@pytest.mark.parametrize("smoothing", [None, 0.2])
def test_label_smoothing_reaches_the_training_and_evaluation_loss(smoothing):
    torch.manual_seed(0)
    model = ImageClassifier(TINY_MLP, **({} if smoothing is None else {"label_smoothing": smoothing})).eval()
    smoothing = smoothing or 0.0  # the default: plain cross-entropy
    assert model.hparams.label_smoothing == smoothing  # as the checkpoint and the logged settings record it
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
        ({"dims": (1, 4, 4), "num_classes": 10}, r"expects inputs of shape \(1, 8, 8\) but the data gives \(1, 4, 4\)"),
        ({"dims": (1, 8, 8), "num_classes": 5}, "predicts 10 classes but the data has 5"),
        ({"dims": (1, 8, 8), "num_classes": 12}, "predicts 10 classes but the data has 12"),
    ],
)
def test_classifier_refuses_data_it_does_not_fit(data, message):
    model = ImageClassifier(TINY_MLP)
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(**data))
    with pytest.raises(ValueError, match=message):
        model.setup("fit")
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(dims=(1, 8, 8), num_classes=10))
    model.setup("fit")  # data that fits passes


def test_a_thousand_classes_in_the_data_match_a_thousand_in_the_network():
    model = ImageClassifier({**TINY_MLP, "num_classes": 1000})
    # A count read from the data is its own int object: only equal values must match, not identical objects.
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(dims=(1, 8, 8), num_classes=int("1000")))
    model.setup("fit")


def random_images(n: int = 32, batch_size: int = 8) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 8, 8, generator=generator), torch.randint(0, 10, (n,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def quiet_trainer(**kwargs) -> L.Trainer:
    kwargs = {"logger": False, "enable_checkpointing": False, "log_every_n_steps": 1, **kwargs}
    return L.Trainer(accelerator="cpu", enable_progress_bar=False, enable_model_summary=False, **kwargs)


def test_compile_wraps_the_network_for_fitting_only(monkeypatch):
    compiled = []  # torch.compile's first call costs seconds of imports: a stand-in records what it gets
    monkeypatch.setattr(torch, "compile", lambda net: compiled.append(net) or net)
    loader = random_images()
    for flag in (True, False):  # off by default
        model = ImageClassifier(TINY_MLP, **({"compile": True} if flag else {}))
        quiet_trainer(max_epochs=1, limit_train_batches=0, limit_val_batches=0).fit(model, loader, loader)
        assert compiled == ([model.net] if flag else []), flag
        compiled.clear()
    # Lightning passes its stage as an enum that equals "fit", not as the string itself.
    for stage in ("validate", "test", "predict"):
        trainer = quiet_trainer(limit_val_batches=0, limit_test_batches=0, limit_predict_batches=0)
        getattr(trainer, stage)(ImageClassifier(TINY_MLP, compile=True), loader)
        assert compiled == [], stage


class RecordingLogger(Logger):
    """Keeps what a run logs: the metrics of each logging call, and the figures TensorBoard would get."""

    def __init__(self):
        super().__init__()
        self.metrics: list[dict[str, float]] = []
        self.figures: list[tuple[str, int]] = []

    name, version = "recording", 0

    @property
    def experiment(self) -> "RecordingLogger":
        return self

    def add_figure(self, tag: str, figure, global_step: int, close: bool) -> None:
        self.figures.append((tag, global_step))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.metrics.append(dict(metrics))

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def last(self, key: str) -> float:
        return [m[key] for m in self.metrics if key in m][-1]


def test_a_run_logs_epoch_metrics_figures_and_progress_bar_values(tmp_path):
    torch.manual_seed(0)
    # 30 images in batches of 8: the last batch holds 6, so a mean of batch means would differ from the set's.
    loader, logger = random_images(30), RecordingLogger()
    model = ImageClassifier(TINY_MLP)
    trainer = quiet_trainer(max_epochs=2, logger=logger, num_sanity_val_steps=1)
    trainer.fit(model, loader, loader)
    assert set(trainer.progress_bar_metrics) == {"train/loss", "train/acc", "val/loss", "val/acc_best"}
    # The sanity check's validation draws no confusion matrix; each real validation epoch draws one.
    assert logger.figures == [("val/confusion_matrix", 0), ("val/confusion_matrix", 1)]
    x, y = loader.dataset.tensors
    with torch.no_grad():
        logits = model.eval()(x)
    # The last validation ran on the final weights: its loss and accuracy are those of the whole set.
    assert logger.last("val/loss") == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert logger.last("val/acc") == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert logger.last("model/params_trainable") == sum(p.numel() for p in model.parameters())

    trainer.test(model, loader)
    assert logger.figures[-1] == ("test/confusion_matrix", 2)
    assert logger.last("test/loss") == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    logged = set().union(*logger.metrics) - {"epoch"}
    assert logged == {
        "model/params_trainable", "train/loss", "train/acc", "val/acc_best",
        *(f"{split}/{name}" for split in ("val", "test") for name in ("loss", "acc", "precision", "recall", "f1")),
    }  # fmt: skip

    # A resumed run carries the checkpoint's best accuracy on, rather than starting from this epoch's.
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    state = torch.load(tmp_path / "run.ckpt", weights_only=False)
    assert state["val_acc_best"] == pytest.approx(max(m["val/acc"] for m in logger.metrics if "val/acc" in m))
    state["val_acc_best"] = 0.97  # above anything this run reaches on random labels
    torch.save(state, tmp_path / "run.ckpt")
    resumed = RecordingLogger()
    quiet_trainer(max_epochs=3, logger=resumed, num_sanity_val_steps=0).fit(
        ImageClassifier(TINY_MLP), loader, loader, ckpt_path=tmp_path / "run.ckpt"
    )
    assert resumed.last("val/acc") < 0.97 and resumed.last("val/acc_best") == pytest.approx(0.97)


def test_predictions_are_class_probabilities():
    torch.manual_seed(0)
    model = ImageClassifier(TINY_MLP).eval()
    x = torch.randn(6, 1, 8, 8)
    probs = model.predict_step({"images": x}, 0)
    assert probs.shape == (6, 10) and torch.allclose(probs.sum(1), torch.ones(6))
    assert torch.allclose(probs.log(), torch.log_softmax(model(x), dim=1), atol=1e-6)


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
    default = ADAM if cls is ImageClassifier else GAN_ADAM
    assert model.hparams.optimizer == default and model.hparams.optimizer is not default
    for name, spec in MODULE_NETS[cls].items():
        assert type(model.hparams[name]) is dict and model.hparams[name] == spec  # plain, for weights_only=True

    first = next(iter(MODULE_NETS[cls]))
    module = build_net(MODULE_NETS[cls][first])
    sgd = OmegaConf.create({"_target_": "torch.optim.SGD", "lr": 0.1})
    given = cls(**{**nets, first: module}, optimizer=sgd)
    assert first not in given.hparams and given.hparams.optimizer == {"_target_": "torch.optim.SGD", "lr": 0.1}
    assert type(given.hparams.optimizer) is dict

    with pytest.raises(ValueError, match="torch.optim.Adamm names no class that can be imported"):
        cls(**nets, optimizer={"_target_": "torch.optim.Adamm"})
