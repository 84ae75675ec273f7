"""The conditional GAN, CycleGAN, their networks, the unpaired datamodules and the generated-image metrics."""

import copy
import math
from pathlib import Path

import pytest
import torch
from lightning import Callback, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader
from torchvision.io import write_png

from litlab.checkpoints.load import CheckpointError
from litlab.data import DigitsMNISTDataModule, ImageFolderUnpairedDataModule, MNISTDataModule
from litlab.data.base import DatasetNotFoundError
from litlab.data.pixels import TANH
from litlab.eval import evaluate
from litlab.figures import image_grid
from litlab.models import ConditionalGAN, CycleGAN
from litlab.models.cyclegan import ImagePool, discriminator_loss, generator_loss, linear_decay
from litlab.models.gan_eval import ClassifierJudge, GenerationMetrics, load_judge
from litlab.models.nets import CNN, ConditionalDiscriminator, ConditionalGenerator, PatchDiscriminator, ResnetGenerator
from litlab.train import train
from tests.helpers.checkpoints import tiny_cgan, tiny_cyclegan
from tests.helpers.config import eval_config, train_config

MNIST_PIXELS = MNISTDataModule.pixels
TINY_G = {"_target_": "litlab.models.nets.ConditionalGenerator", "latent_dim": 8, "base_channels": 8}
TINY_D = {"_target_": "litlab.models.nets.ConditionalDiscriminator", "base_channels": 8}
TINY_RESNET = {
    "_target_": "litlab.models.nets.ResnetGenerator",
    "in_channels": 1,
    "out_channels": 1,
    "base_channels": 4,
    "num_blocks": 1,
}
TINY_PATCH = {
    "_target_": "litlab.models.nets.PatchDiscriminator",
    "in_channels": 1,
    "base_channels": 4,
    "num_layers": 2,
}


def quiet_trainer(tmp_path: Path, logger=False, **kwargs) -> Trainer:
    return Trainer(
        accelerator="cpu",
        devices=1,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kwargs,
    )


@pytest.fixture(scope="module")
def judge_ckpt(tmp_path_factory, mnist_root) -> Path:
    """A checkpoint of the project's own `experiment=mnist_cnn`, trained on the generated MNIST."""
    out = tmp_path_factory.mktemp("judge")
    cfg = train_config(
        [
            "experiment=mnist_cnn",
            f"paths.data_dir={mnist_root}",
            "data.download=false",
            "trainer.max_epochs=3",
            "data.augment=false",
            "logger=csv",
            "test=false",
            "model.net.conv_channels=[8,16]",
            "model.net.dense_units=[32]",
        ],
        out,
    )
    _, objects = train(cfg)
    return Path(objects["trainer"].checkpoint_callback.last_model_path)


@pytest.mark.parametrize("image_size", [28, 32])
def test_conditional_networks_shapes(image_size):
    g = ConditionalGenerator(latent_dim=16, num_classes=10, out_channels=1, image_size=image_size, base_channels=8)
    d = ConditionalDiscriminator(num_classes=10, in_channels=1, image_size=image_size, base_channels=8)
    labels = torch.arange(10)
    images = g(torch.randn(10, 16), labels)
    assert images.shape == (10, 1, image_size, image_size)
    assert d(images, labels).shape == (10,)
    # Both players read the condition: one noise vector gives a different image for every label, and one
    # image a different score under every label.
    g.eval()
    same_noise = g(torch.randn(1, 16).expand(10, 16), labels)
    assert len({tuple(image.flatten().tolist()) for image in same_noise}) == 10
    scores = d(images[:1].expand(10, -1, -1, -1), labels)
    assert len(set(scores.tolist())) == 10


def test_conditional_networks_refuse_sizes_they_cannot_make():
    with pytest.raises(ValueError, match="divisible by 4"):
        ConditionalGenerator(image_size=30)


@pytest.mark.parametrize(("size", "channels", "layers", "patch"), [(28, 1, 2, 5), (64, 3, 3, 6)])
def test_cyclegan_networks_shapes(size, channels, layers, patch):
    g = ResnetGenerator(channels, channels, base_channels=4, num_blocks=2)
    d = PatchDiscriminator(channels, base_channels=4, num_layers=layers)
    x = torch.rand(2, channels, size, size) * 2 - 1
    assert g(x).shape == x.shape
    assert d(x).shape == (2, 1, patch, patch)  # one logit per patch
    with pytest.raises(ValueError, match="divisible by 4"):
        g(torch.zeros(1, channels, 30, 30))


class RecordSteps(Callback):
    """Snapshots every parameter before each optimizer step and after the batch."""

    def __init__(self):
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def _snapshot(self, module):
        self.snapshots.append({name: p.detach().clone() for name, p in module.named_parameters()})

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self._snapshot(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._snapshot(pl_module)


def changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if not torch.equal(before[name], after[name])}


def test_cgan_step_updates_each_player_with_its_own_optimizer(tmp_path, mnist_root):
    model = ConditionalGAN(TINY_G, TINY_D)
    data = MNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=32, val_fraction=0.0)
    recorder = RecordSteps()
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=0, callbacks=[recorder])
    trainer.fit(model, data)
    # both losses are epoch means, shown on the progress bar
    assert set(trainer.callback_metrics) == set(trainer.progress_bar_metrics) == {"train/d_loss", "train/g_loss"}
    before_d, before_g, after = recorder.snapshots
    g_names = {n for n in before_d if n.startswith("generator.")}
    d_names = {n for n in before_d if n.startswith("discriminator.")}
    assert changed(before_d, before_g) == d_names  # the discriminator step moves all of D and nothing else
    assert changed(before_g, after) == g_names  # the generator step moves all of G and nothing else


def test_cyclegan_generator_loss_is_its_formula():
    # Hand-made values: every term can be worked out on paper.
    d_b_on_fake_b = torch.tensor([0.5, 1.0])  # LSGAN to 1: (0.25 + 0) / 2 = 0.125
    d_a_on_fake_a = torch.tensor([0.0, 0.0])  # (1 + 1) / 2 = 1
    real_a, cycled_a = torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.1)  # L1 0.1
    real_b, cycled_b = torch.ones(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.7)  # L1 0.3
    identity_b, identity_a = torch.full((2, 1, 2, 2), 0.8), torch.full((2, 1, 2, 2), -0.4)  # L1 0.2 and 0.4
    losses = generator_loss(
        d_b_on_fake_b,
        d_a_on_fake_a,
        real_a,
        cycled_a,
        real_b,
        cycled_b,
        identity_b,
        identity_a,
        lambda_cycle=10.0,
        lambda_identity=0.5,
    )
    adversarial, cycle, identity = 0.125 + 1.0, 10 * (0.1 + 0.3), 10 * 0.5 * (0.2 + 0.4)
    assert math.isclose(losses["adversarial"].item(), adversarial, rel_tol=1e-6)
    assert math.isclose(losses["cycle"].item(), cycle, rel_tol=1e-6)
    assert math.isclose(losses["identity"].item(), identity, rel_tol=1e-6)
    assert math.isclose(losses["loss"].item(), adversarial + cycle + identity, rel_tol=1e-6)
    without = generator_loss(d_b_on_fake_b, d_a_on_fake_a, real_a, cycled_a, real_b, cycled_b)
    assert math.isclose(without["loss"].item(), adversarial + cycle, rel_tol=1e-6)
    # the identity term needs both directions' images: one alone is not half a term
    for half in ({"identity_b": identity_b}, {"identity_a": identity_a}):
        one_way = generator_loss(d_b_on_fake_b, d_a_on_fake_a, real_a, cycled_a, real_b, cycled_b, **half)
        assert one_way["identity"].item() == 0
        assert math.isclose(one_way["loss"].item(), adversarial + cycle, rel_tol=1e-6)


class ScoreByMean(torch.nn.Module):
    """A stand-in discriminator whose logit is the image's mean plus its label (or just the mean)."""

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        score = images.flatten(1).mean(1)
        return score if labels is None else score + labels


def test_cgan_losses_are_bce_with_logits_on_the_conditioned_scores():
    model = ConditionalGAN(TINY_G, TINY_D)
    model.discriminator = ScoreByMean()
    real, fake = torch.full((2, 1, 4, 4), 0.5), torch.full((2, 1, 4, 4), -0.25)
    labels = torch.tensor([0, 2])
    softplus = torch.nn.functional.softplus
    real_logits, fake_logits = 0.5 + labels, -0.25 + labels
    # BCE with logits: -log sigmoid(z) = softplus(-z) for target 1, softplus(z) for target 0
    d_expected = (softplus(-real_logits).mean() + softplus(fake_logits).mean()) / 2
    assert model.discriminator_loss(real, fake, labels).item() == pytest.approx(d_expected.item(), rel=1e-6)
    assert model.generator_loss(fake, labels).item() == pytest.approx(softplus(-fake_logits).mean().item(), rel=1e-6)


def test_cgan_samples_follow_the_label_they_are_asked_for():
    model = ConditionalGAN(TINY_G, TINY_D).eval()
    labels = torch.tensor([1, 7, 7])
    noise = torch.randn(3, 8)
    assert torch.equal(model(noise, labels), model.generator(noise, labels))
    # sample and predict_step draw fresh noise of the generator's latent size from the global RNG.
    torch.manual_seed(5)
    expected = model.generator(torch.randn(3, 8), labels)
    torch.manual_seed(5)
    assert torch.equal(model.sample(labels), expected)
    torch.manual_seed(5)
    assert torch.equal(model.predict_step({"labels": labels}, 0), expected)
    # the same noise asked for another digit gives another image
    torch.manual_seed(5)
    other = model.sample(torch.tensor([2, 7, 7]))
    assert not torch.equal(other[0], expected[0]) and torch.equal(other[1:], expected[1:])


def test_cgan_grid_draws_fixed_noise_one_row_per_class():
    model = ConditionalGAN(TINY_G, TINY_D, samples_per_class=3)
    torch.manual_seed(1)  # the global RNG does not move the grid's noise: every run and model shares it
    again = ConditionalGAN(TINY_G, TINY_D, samples_per_class=3)
    assert model.fixed_noise.shape == (30, 8) and torch.equal(model.fixed_noise, again.fixed_noise)
    assert model.fixed_labels.tolist() == [k for k in range(10) for _ in range(3)]
    assert not any(name.startswith("fixed_") for name in model.state_dict())  # not saved in checkpoints
    assert ConditionalGAN(TINY_G, TINY_D).fixed_noise.shape == (100, 8)  # ten samples per class by default
    model.generator.train()
    grid = model.sample_grid()
    assert model.generator.training  # the mode it had comes back
    model.generator.eval()
    expected = image_grid(model.generator(model.fixed_noise, model.fixed_labels), nrow=3)
    assert torch.equal(grid, expected)  # drawn in eval mode (batch norm's running statistics)
    model.sample_grid()
    assert not model.generator.training


def test_cgan_real_batches_are_mapped_to_the_generator_range():
    model = ConditionalGAN(TINY_G, TINY_D)
    images = torch.linspace(-0.4, 2.8, 16).view(1, 1, 4, 4)
    assert torch.equal(model.real_images(images), images)  # no convention known: taken as they are
    model._recorded_pixels = MNIST_PIXELS
    assert torch.allclose(model.real_images(images), MNIST_PIXELS.convert(images, TANH))
    assert not torch.allclose(MNIST_PIXELS.convert(images, TANH), images)


def test_cgan_checks_the_judge_path_before_fit_and_test_only(tmp_path):
    model = ConditionalGAN(TINY_G, TINY_D, classifier_ckpt=str(tmp_path / "nope.ckpt"))
    for stage in ("fit", "test"):
        with pytest.raises(CheckpointError, match="model.classifier_ckpt"):
            model.setup(stage)
    model.setup("predict")  # predicting draws images: no judge needed
    ConditionalGAN(TINY_G, TINY_D).setup("fit")


def test_cgan_optimizer_settings_reach_both_players():
    model = ConditionalGAN(TINY_G, TINY_D, optimizer={"_target_": "torch.optim.Adam", "lr": 1e-3, "betas": [0.9, 0.99]})
    opt_d, opt_g = model.configure_optimizers()
    assert [p for group in opt_d.param_groups for p in group["params"]] == list(model.discriminator.parameters())
    assert [p for group in opt_g.param_groups for p in group["params"]] == list(model.generator.parameters())
    for opt in (opt_d, opt_g):
        assert opt.defaults["lr"] == 1e-3 and opt.defaults["betas"] == (0.9, 0.99)
    (default, _) = ConditionalGAN(TINY_G, TINY_D).configure_optimizers()
    assert default.defaults["lr"] == 2e-4 and default.defaults["betas"] == (0.5, 0.999)


def test_cgan_test_logs_losses_and_judge_metrics_of_its_samples(tmp_path, mnist_root, monkeypatch):
    # An untrained judge stands in for a trained one: the figures are checked against the same judge.
    judge = ClassifierJudge(CNN(image_size=28, conv_channels=[4], dense_units=[8]), MNIST_PIXELS)
    monkeypatch.setattr("litlab.models.cgan.load_judge", lambda path: judge)
    (tmp_path / "judge.ckpt").touch()
    data = MNISTDataModule(data_dir=str(mnist_root), download=False, val_fraction=0.0, batch_size=200)
    data.setup()
    real, labels = data.data_test.images.float() / 127.5 - 1, data.data_test.labels
    oracle = Oracle(real, labels, shift=3)
    model = ConditionalGAN(oracle, TINY_D, classifier_ckpt=str(tmp_path / "judge.ckpt"))
    (metrics,) = quiet_trainer(tmp_path).test(model, datamodule=data, verbose=False)
    fake = oracle.bank[labels]
    model.eval()
    with torch.no_grad():
        assert metrics["test/d_loss"] == pytest.approx(model.discriminator_loss(real, fake, labels).item(), rel=1e-5)
        assert metrics["test/g_loss"] == pytest.approx(model.generator_loss(fake, labels).item(), rel=1e-5)
    expected = GenerationMetrics(judge)
    expected.update(real, fake, labels)
    expected = expected.compute()
    assert metrics["test/gan_test_acc"] == pytest.approx(expected["gan_test_acc"].item(), abs=1e-6)
    assert metrics["test/fid"] == pytest.approx(expected["fid"].item(), rel=1e-4)
    assert not any("judge" in name for name in model.state_dict())  # the judge is dropped after the test
    model.hparams.classifier_ckpt = None
    (losses_only,) = quiet_trainer(tmp_path).test(model, datamodule=data, verbose=False)
    assert set(losses_only) == {"test/d_loss", "test/g_loss"}


def test_cyclegan_discriminator_loss_is_half_the_least_squares_sum():
    real, fake = torch.full((2, 1, 2, 2), 0.8), torch.full((2, 1, 2, 2), 0.25)
    # (0.8 - 1)^2 for real, (0.25 - 0)^2 for fake, halved
    assert discriminator_loss(ScoreByMean(), real, fake).item() == pytest.approx((0.04 + 0.0625) / 2)


def test_cyclegan_knobs_reach_losses_schedule_and_pools():
    model = CycleGAN(TINY_RESNET, TINY_PATCH, pool_size=7, lr_constant_epochs=2, lr_decay_epochs=4)
    assert model.pool_a.size == model.pool_b.size == 7
    (opt_g, opt_d), (sched_g, sched_d) = model.configure_optimizers()
    factor = linear_decay(2, 4)
    assert [sched_g.lr_lambdas[0](e) for e in range(6)] == [factor(e) for e in range(6)]
    assert [factor(e) for e in range(6)] == pytest.approx([1, 1, 0.8, 0.6, 0.4, 0.2])
    assert sched_d.lr_lambdas[0](3) == factor(3)
    generators = {id(p) for net in (model.g_ab, model.g_ba) for p in net.parameters()}
    discriminators = {id(p) for net in (model.d_a, model.d_b) for p in net.parameters()}
    assert {id(p) for group in opt_g.param_groups for p in group["params"]} == generators
    assert {id(p) for group in opt_d.param_groups for p in group["params"]} == discriminators
    assert opt_g.defaults["lr"] == 2e-4 and opt_g.defaults["betas"] == (0.5, 0.999)
    with pytest.raises(ValueError, match=r"same number of channels \(A has 1, B has 3\): set model.use_identity=false"):
        CycleGAN({**TINY_RESNET, "out_channels": 3}, TINY_PATCH)
    with pytest.raises(ValueError, match=r"same number of channels \(A has 3, B has 1\)"):
        CycleGAN({**TINY_RESNET, "in_channels": 3}, TINY_PATCH)
    with pytest.raises(ValueError, match=r"^model.pool_size must be 0 \(no pool\) or a number of images, got -1\.$"):
        CycleGAN(TINY_RESNET, TINY_PATCH, pool_size=-1)
    unpooled = CycleGAN(TINY_RESNET, TINY_PATCH, pool_size=0)
    assert unpooled.pool_a.size == unpooled.pool_b.size == 0
    assert not CycleGAN({**TINY_RESNET, "out_channels": 3}, TINY_PATCH, use_identity=False).hparams.use_identity
    CycleGAN({**TINY_RESNET, "in_channels": 300, "out_channels": int("300")}, TINY_PATCH)  # equal, as values
    # the paper's defaults: a pool of 50, 100 epochs at the full rate, then 100 of linear decay
    default = CycleGAN(TINY_RESNET, TINY_PATCH)
    assert default.pool_a.size == default.pool_b.size == 50
    (_, _), (sched_g, _) = default.configure_optimizers()
    assert [sched_g.lr_lambdas[0](e) for e in (0, 99, 100, 150)] == pytest.approx([1, 1, 1 - 1 / 101, 1 - 51 / 101])


def test_cyclegan_loss_weights_scale_their_terms():
    images = [torch.full((2, 1, 2, 2), value) for value in (0.0, 0.1, 1.0, 0.7, 0.8, -0.4)]
    scores = torch.tensor([0.5, 1.0]), torch.zeros(2)
    defaults = generator_loss(*scores, *images)
    doubled = generator_loss(*scores, *images, lambda_cycle=20.0, lambda_identity=0.5)
    more_identity = generator_loss(*scores, *images, lambda_cycle=10.0, lambda_identity=1.5)
    assert doubled["cycle"].item() == pytest.approx(2 * defaults["cycle"].item())
    assert doubled["identity"].item() == pytest.approx(2 * defaults["identity"].item())  # weighted by both
    assert more_identity["identity"].item() == pytest.approx(3 * defaults["identity"].item())
    assert more_identity["cycle"].item() == pytest.approx(defaults["cycle"].item())
    assert defaults["identity"].item() == pytest.approx(10 * 0.5 * (0.2 + 0.4))  # the paper's 10 and 0.5


def test_cyclegan_discriminator_loss_does_not_reach_the_generator():
    real, fake = torch.ones(2, 1, 2, 2, requires_grad=True), torch.full((2, 1, 2, 2), 0.25, requires_grad=True)
    discriminator_loss(ScoreByMean(), real, fake).backward()
    assert real.grad is not None
    assert fake.grad is None


def test_cyclegan_builds_two_independent_players_of_each_kind():
    model = CycleGAN(TINY_RESNET, TINY_PATCH)
    for first, second in ((model.g_ab, model.g_ba), (model.d_a, model.d_b)):
        assert first is not second and type(first) is type(second)
        assert not {id(p) for p in first.parameters()} & {id(p) for p in second.parameters()}
    torch.manual_seed(0)
    g, d = ResnetGenerator(1, 1, base_channels=4, num_blocks=1), PatchDiscriminator(1, base_channels=4, num_layers=2)
    given = CycleGAN(g, d)
    assert given.g_ab is g and given.d_a is d  # a module is used as it is, its twin is a fresh copy
    for net, twin in ((given.g_ab, given.g_ba), (given.d_a, given.d_b)):
        assert [p.shape for p in net.parameters()] == [p.shape for p in twin.parameters()]
        assert not any(
            torch.equal(p, q) for p, q in zip(net.parameters(), twin.parameters(), strict=True) if p.ndim > 1
        )


def test_cyclegan_translates_both_ways_and_back():
    model = CycleGAN(TINY_RESNET, TINY_PATCH).eval()
    a, b = unpaired_batches(1)[0].values()
    images = model.translate(a, b)
    assert torch.equal(images["fake_b"], model.g_ab(a)) and torch.equal(images["fake_a"], model.g_ba(b))
    assert torch.equal(images["cycled_a"], model.g_ba(model.g_ab(a)))
    assert torch.equal(images["cycled_b"], model.g_ab(model.g_ba(b)))
    assert torch.equal(model(a), model.g_ab(a))
    assert torch.equal(model.predict_step({"images": a}, 0), model.g_ab(a))  # A to B unless told otherwise
    model.predict_direction = "".join(["Bto", "A"])  # read from the command line, as predict.py sets it
    assert torch.equal(model.predict_step({"images": a}, 0), model.g_ba(a))


def test_cyclegan_grid_rows_are_domain_translation_and_cycle():
    model = CycleGAN(TINY_RESNET, TINY_PATCH)
    a, b = torch.rand(3, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    model.train()
    grid = model.sample_grid(a, b)
    assert model.training  # the mode it had comes back
    model.eval()
    images = model.translate(a, b)
    rows = [a[:2], images["fake_b"][:2], images["cycled_a"][:2], b, images["fake_a"], images["cycled_b"]]
    assert torch.equal(grid, image_grid(torch.cat(rows), nrow=2))  # as many columns as the smaller domain has
    model.sample_grid(a, b)
    assert not model.training


GREY_TO_COLOUR = {**TINY_RESNET, "out_channels": 3}


def test_cyclegan_between_grey_and_colour_domains_trains_and_translates_both_ways(tmp_path):
    torch.manual_seed(0)
    # The discriminator mapping says 1 channel: D_B takes domain B's 3 all the same.
    model = CycleGAN(GREY_TO_COLOUR, TINY_PATCH, use_identity=False, pool_size=2)
    assert (model.g_ab.in_channels, model.g_ab.out_channels) == (1, 3)
    assert (model.g_ba.in_channels, model.g_ba.out_channels) == (3, 1)
    assert (model.d_a.in_channels, model.d_b.in_channels) == (1, 3)
    rng = torch.Generator().manual_seed(0)
    batch = {"A": torch.rand(2, 1, 16, 16, generator=rng) * 2 - 1, "B": torch.rand(2, 3, 16, 16, generator=rng) * 2 - 1}
    for net, domain in ((model.d_a, "A"), (model.d_b, "B")):
        assert net(batch[domain]).shape == (2, 1, 2, 2)  # each discriminator judges its own domain's images
    recorder = RecordSteps()
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[recorder]).fit(
        model, train_dataloaders=DataLoader([batch], batch_size=None)
    )
    before, _, after = recorder.snapshots
    assert {name.split(".")[0] for name in changed(before, after)} == {"g_ab", "g_ba", "d_a", "d_b"}
    model.eval()
    images = model.translate(batch["A"], batch["B"])
    shapes = {name: tuple(image.shape) for name, image in images.items()}
    colour, grey = (2, 3, 16, 16), (2, 1, 16, 16)
    assert shapes == {"fake_b": colour, "fake_a": grey, "cycled_a": grey, "cycled_b": colour}
    model.predict_direction = "BtoA"
    assert model.predict_step({"images": batch["B"]}, 0).shape == grey


def test_cyclegan_colour_to_grey_builds_each_player_with_its_domain_channels():
    model = CycleGAN({**TINY_RESNET, "in_channels": 3}, {**TINY_PATCH, "in_channels": 7}, use_identity=False)
    assert (model.g_ba.in_channels, model.g_ba.out_channels) == (1, 3)
    assert (model.d_a.in_channels, model.d_b.in_channels) == (3, 1)
    same = CycleGAN({**TINY_RESNET, "in_channels": 3, "out_channels": 3}, TINY_PATCH)
    assert (same.d_a.in_channels, same.d_b.in_channels) == (3, 3)


def test_cyclegan_grid_shows_grey_rows_in_three_channels():
    torch.manual_seed(0)
    model = CycleGAN(GREY_TO_COLOUR, TINY_PATCH, use_identity=False).eval()
    a, b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(3, 3, 16, 16) * 2 - 1
    grid = model.sample_grid(a, b)
    images = model.translate(a, b)
    assert grid.shape == (3, 2 + 6 * 18, 2 + 2 * 18)  # six rows of the two images of the smaller domain

    def cell(row: int, column: int) -> torch.Tensor:
        top, left = 2 + 18 * row, 2 + 18 * column
        return grid[:, top : top + 16, left : left + 16]

    rows = [a, images["fake_b"], images["cycled_a"], b, images["fake_a"], images["cycled_b"]]
    for index, row in enumerate(rows):
        for column in range(2):
            # make_grid maps [-1, 1] to [0, 1]; a grey image shows its one channel in red, green and blue
            expected = ((row[column] + 1) / 2).expand(3, -1, -1)
            assert torch.allclose(cell(index, column), expected, atol=1e-6), (index, column)
    assert not torch.allclose(cell(1, 0)[0], cell(1, 0)[1])  # a translated image is in colour


def test_cyclegan_refuses_modules_for_domains_with_different_channels():
    discriminator = PatchDiscriminator(1, base_channels=4, num_layers=2)
    for a, b in ((1, 3), (3, 1)):
        generator = ResnetGenerator(a, b, base_channels=4, num_blocks=1)
        sentence = rf"^Domains with {a} and {b} channels need model.generator and model.discriminator as _target_ "
        for players in ((generator, TINY_PATCH), ({**TINY_RESNET, "in_channels": a, "out_channels": b}, discriminator)):
            for use_identity in (True, False):  # this, not the identity loss, is what to fix first
                with pytest.raises(ValueError, match=sentence + r"mappings.*: pass mappings, not modules\.$"):
                    CycleGAN(*players, use_identity=use_identity)
    # equal channels, as values: modules are fine (300 and int("300") are distinct objects)
    wide = ResnetGenerator(300, int("300"), base_channels=4, num_blocks=1)
    CycleGAN(wide, PatchDiscriminator(300, base_channels=4, num_layers=2))


def test_cyclegan_checks_the_judge_path_before_fit_and_test_only(tmp_path):
    model = CycleGAN(TINY_RESNET, TINY_PATCH, classifier_ckpt=str(tmp_path / "nope.ckpt"))
    for stage in ("fit", "test"):
        with pytest.raises(CheckpointError, match="model.classifier_ckpt"):
            model.setup(stage)
    model.setup("predict")
    CycleGAN(TINY_RESNET, TINY_PATCH).setup("fit")


def test_learning_rate_is_constant_then_decays_linearly():
    factor = linear_decay(constant_epochs=3, decay_epochs=3)
    assert [factor(epoch) for epoch in range(6)] == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25]


def test_image_pool_returns_past_images_half_of_the_time():
    pool = ImagePool(10, generator=torch.Generator().manual_seed(0))
    first = torch.arange(10.0).view(10, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling up: images come back as they are
    new = torch.arange(100.0, 4100.0).view(4000, 1, 1, 1)
    out = pool.query(new)
    from_history = (out != new).flatten()
    assert abs(from_history.float().mean().item() - 0.5) < 0.03
    # what comes back from the history is an image seen before, never a made-up one
    seen = set(range(10)) | set(range(100, 4100))
    returned = {int(v) for v in out[from_history].flatten()}
    assert returned <= seen
    # every slot of the first fill can come back, and new images take the place of those handed out
    assert set(range(10)) <= returned and len(returned - set(range(10))) > 1000
    assert len(pool.images) == 10  # the history never grows beyond its size
    # the image handed back is drawn evenly from the history: follow which slot each image went to
    slot_of, hits = {value: value for value in range(10)}, [0] * 10
    for taken, given in zip(out[from_history].flatten().tolist(), new[from_history].flatten().tolist(), strict=True):
        slot_of[given] = slot_of[taken]
        hits[slot_of[taken]] += 1
    assert max(hits) < 1.3 * min(hits)
    assert torch.equal(ImagePool(0).query(new), new)
    assert ImagePool().size == 50
    large = ImagePool(300)  # sizes beyond CPython's small-int cache compare by value too
    large.query(torch.zeros(400, 1, 1, 1))
    assert len(large.images) == 300
    # a seeded pool is repeatable, whatever the global random state
    twins = [ImagePool(10, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    outputs = []
    for seed, twin in enumerate(twins):
        torch.manual_seed(seed)
        outputs.append(torch.cat([twin.query(first), twin.query(new[:100])]))
    assert torch.equal(*outputs)


def test_cyclegan_step_updates_generators_then_discriminators(tmp_path, mnist_root):
    model = CycleGAN(TINY_RESNET, TINY_PATCH, pool_size=4)
    data = DigitsMNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=8, max_images=64)
    recorder = RecordSteps()
    quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, callbacks=[recorder]).fit(model, data)
    before_g, before_d, after = recorder.snapshots
    g_names = {n for n in before_g if n.startswith(("g_ab.", "g_ba."))}
    d_names = {n for n in before_g if n.startswith(("d_a.", "d_b."))}
    assert changed(before_g, before_d) == g_names
    assert changed(before_d, after) == d_names


def unpaired_batches(count: int, images: int = 2, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Fixed batches of two grey 16x16 domains in [-1, 1], as `litlab.data.unpaired` gives them."""
    rng = torch.Generator().manual_seed(seed)
    shape = (images, 1, 16, 16)
    return [
        {"A": torch.rand(shape, generator=rng) * 2 - 1, "B": torch.rand(shape, generator=rng) * 2 - 1}
        for _ in range(count)
    ]


def reference_cyclegan(model, batches, epochs, lambda_cycle, lambda_identity, use_identity, schedule):
    """CycleGAN's training loop written out plainly: the losses of the last epoch (means over its batches)."""
    opt_g = torch.optim.Adam([*model.g_ab.parameters(), *model.g_ba.parameters()], lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*model.d_a.parameters(), *model.d_b.parameters()], lr=2e-4, betas=(0.5, 0.999))
    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, schedule) for opt in (opt_g, opt_d)]
    for _ in range(epochs):
        logged = []
        for batch in batches:
            a, b = batch["A"], batch["B"]
            fake_b, fake_a = model.g_ab(a), model.g_ba(b)
            identity = {"identity_b": model.g_ab(b), "identity_a": model.g_ba(a)} if use_identity else {}
            losses = generator_loss(
                model.d_b(fake_b),
                model.d_a(fake_a),
                a,
                model.g_ba(fake_b),
                b,
                model.g_ab(fake_a),
                **identity,
                lambda_cycle=lambda_cycle,
                lambda_identity=lambda_identity,
            )
            opt_g.zero_grad()
            losses["loss"].backward()
            opt_g.step()
            d_a_loss = discriminator_loss(model.d_a, a, fake_a)
            d_b_loss = discriminator_loss(model.d_b, b, fake_b)
            opt_d.zero_grad()
            (d_a_loss + d_b_loss).backward()
            opt_d.step()
            logged.append(
                {
                    **{f"g_{k}": v.item() for k, v in losses.items()},
                    "d_a_loss": d_a_loss.item(),
                    "d_b_loss": d_b_loss.item(),
                }
            )
        for scheduler in schedulers:
            scheduler.step()
    return {key: sum(entry[key] for entry in logged) / len(logged) for key in logged[0]}


class RecordLearningRates(Callback):
    def __init__(self):
        self.rates: list[list[float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rates.append([opt.param_groups[0]["lr"] for opt in trainer.optimizers])


@pytest.mark.parametrize(
    "settings",
    [{}, {"lambda_cycle": 3.0, "lambda_identity": 0.2}, {"use_identity": False}],
    ids=["defaults", "weights", "no_identity"],
)
def test_cyclegan_training_is_the_reference_loop(tmp_path, settings):
    # The pool is larger than the fakes of the run: it hands every fake back as it is, as the loop above does.
    batches = unpaired_batches(2, images=9)
    torch.manual_seed(0)
    model = CycleGAN(TINY_RESNET, TINY_PATCH, lr_constant_epochs=1, lr_decay_epochs=2, **settings)
    reference = copy.deepcopy(model)
    rates = RecordLearningRates()
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[rates])
    trainer.fit(model, train_dataloaders=DataLoader(batches, batch_size=None))
    weights = {"lambda_cycle": 10.0, "lambda_identity": 0.5, "use_identity": True, **settings}
    expected = reference_cyclegan(reference, batches, 2, schedule=linear_decay(1, 2), **weights)
    logged = {key.removeprefix("train/"): value.item() for key, value in trainer.callback_metrics.items()}
    assert logged == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert set(trainer.progress_bar_metrics) == {"train/g_loss"}
    if not weights["use_identity"]:
        assert logged["g_identity"] == 0
    for (name, trained), kept in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(trained, kept, atol=1e-6), name
    assert torch.equal(model.grid_batch["A"], batches[0]["A"][:8])  # the epoch grids show 8 images of each domain
    # the schedule steps once an epoch, for both optimizers: 1 in the first epoch, 2/3 in the second
    assert [rate for step in rates.rates for rate in step] == pytest.approx([2e-4] * 4 + [2e-4 * 2 / 3] * 4)


class FirstClassJudge(torch.nn.Module):
    """A stand-in judge that reads every image as a 0."""

    num_classes = 10

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.zeros(len(images), dtype=torch.long), 10).float()


def test_cyclegan_test_reports_cycle_errors_and_label_accuracy_of_valid_images(tmp_path, monkeypatch):
    monkeypatch.setattr("litlab.models.cyclegan.load_judge", lambda path: FirstClassJudge())
    (tmp_path / "judge.ckpt").touch()
    model = CycleGAN(TINY_RESNET, TINY_PATCH, classifier_ckpt=str(tmp_path / "judge.ckpt"))
    batches = unpaired_batches(2)
    # An unpaired test set pads the shorter domain: padded images are marked invalid and never counted.
    batches[0].update(valid_A=torch.tensor([True, True]), valid_B=torch.tensor([True, False]))
    batches[1].update(valid_A=torch.tensor([True, False]), valid_B=torch.tensor([False, False]))
    batches[0]["label_A"], batches[1]["label_A"] = torch.tensor([0, -1]), torch.tensor([3, 0])
    (metrics,) = quiet_trainer(tmp_path).test(model, DataLoader(batches, batch_size=None), verbose=False)
    model.eval()
    errors = {"A": [], "B": []}
    with torch.no_grad():
        for batch in batches:
            images = model.translate(batch["A"], batch["B"])
            for domain in "AB":
                error = (images[f"cycled_{domain.lower()}"] - batch[domain]).abs().flatten(1).mean(1)
                errors[domain] += error[batch[f"valid_{domain}"]].tolist()
    assert len(errors["A"]) == 3 and len(errors["B"]) == 1
    for domain in "AB":
        assert metrics[f"test/cycle_error_{domain}"] == pytest.approx(sum(errors[domain]) / len(errors[domain]))
    # known labels of valid images: 0 (read right) and 3 (read wrong); the -1 and the padded 0 are left out
    assert metrics["test/label_acc"] == pytest.approx(0.5)
    assert not any("judge" in name or "label_acc" in name for name in model.state_dict())

    # A second test starts afresh; without labels (image folders) there is no label accuracy.
    unlabelled = unpaired_batches(1, seed=1)
    unlabelled[0].update(valid_A=torch.tensor([True, True]), valid_B=torch.tensor([True, True]))
    (again,) = quiet_trainer(tmp_path).test(model, DataLoader(unlabelled, batch_size=None), verbose=False)
    with torch.no_grad():
        images = model.translate(unlabelled[0]["A"], unlabelled[0]["B"])
    assert set(again) == {"test/cycle_error_A", "test/cycle_error_B"}
    expected = (images["cycled_b"] - unlabelled[0]["B"]).abs().mean().item()
    assert again["test/cycle_error_B"] == pytest.approx(expected)
    unlabelled[0]["label_A"] = torch.tensor([-1, -1])
    (folder,) = quiet_trainer(tmp_path).test(model, DataLoader(unlabelled, batch_size=None), verbose=False)
    assert "test/label_acc" not in folder


def read_images(log_dir: Path) -> dict[str, list]:
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    events.Reload()
    return {tag: events.Images(tag) for tag in events.Tags()["images"]}


def test_cgan_grid_reaches_tensorboard_one_row_per_class(tmp_path, mnist_root):
    model = ConditionalGAN(TINY_G, TINY_D, samples_per_class=6)
    data = MNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=64, val_fraction=0.0)
    logger = TensorBoardLogger(tmp_path, name="tb")
    quiet_trainer(tmp_path, logger=logger, max_epochs=2, limit_train_batches=2, limit_val_batches=0).fit(model, data)
    images = read_images(Path(logger.log_dir))["samples/fixed_noise"]
    assert [image.step for image in images] == [0, 1]  # one grid per epoch
    assert (images[-1].height, images[-1].width) == (10 * 30 + 2, 6 * 30 + 2)  # 10 class rows, 6 columns


def test_cyclegan_grid_reaches_tensorboard(tmp_path, mnist_root):
    model = CycleGAN(TINY_RESNET, TINY_PATCH, grid_images=4)
    data = DigitsMNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=8, max_images=32)
    logger = TensorBoardLogger(tmp_path, name="tb")
    quiet_trainer(tmp_path, logger=logger, max_epochs=1, limit_train_batches=2).fit(model, data)
    (image,) = read_images(Path(logger.log_dir))["samples/cycle"]
    assert (image.height, image.width) == (6 * 30 + 2, 4 * 30 + 2)  # A, G_AB(A), cycled A, and the same for B


def test_generation_metrics_compute_and_mean_something(judge_ckpt, mnist_root):
    judge = load_judge(judge_ckpt)
    data = MNISTDataModule(data_dir=str(mnist_root), download=False, val_fraction=0.0)
    data.setup()
    images, labels = data.data_test.images, data.data_test.labels
    real = images.float() / 127.5 - 1  # [-1, 1], as generators produce
    # the judge maps [-1, 1] to the classifier's own convention: on real test images it is accurate
    assert (judge(real).argmax(1) == labels).float().mean() > 0.9

    real_vs_real = GenerationMetrics(judge)
    real_vs_real.update(real, real, labels)
    same = real_vs_real.compute()
    assert same["gan_test_acc"] > 0.9
    assert abs(same["fid"].item()) < 1e-2  # identical sets: distance zero

    real_vs_noise = GenerationMetrics(judge)
    real_vs_noise.update(real, torch.rand_like(real) * 2 - 1, labels)
    noise = real_vs_noise.compute()
    assert noise["gan_test_acc"] < 0.5
    assert noise["fid"] > 10 * max(same["fid"].item(), 1e-3)


class Oracle(torch.nn.Module):
    """A stand-in generator that ignores its noise and returns a real image of class `label + shift`."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, shift: int):
        super().__init__()
        self.latent_dim, self.num_classes = 8, 10
        self.register_buffer("bank", torch.stack([images[labels == (k + shift) % 10][0] for k in range(10)]))
        self.unused = torch.nn.Parameter(torch.zeros(()))  # the GAN's optimizers want a parameter

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.bank[labels]


@pytest.mark.parametrize("shift", [0, 3])
def test_cgan_test_judges_each_sample_against_the_label_it_was_asked_for(tmp_path, judge_ckpt, mnist_root, shift):
    data = MNISTDataModule(data_dir=str(mnist_root), download=False, val_fraction=0.0, batch_size=50)
    data.setup()
    real = data.data_test.images.float() / 127.5 - 1
    oracle = Oracle(real, data.data_test.labels, shift)
    model = ConditionalGAN(oracle, TINY_D, classifier_ckpt=str(judge_ckpt))
    (metrics,) = quiet_trainer(tmp_path).test(model, datamodule=data, verbose=False)
    judge, labels = load_judge(judge_ckpt), data.data_test.labels
    read_back = (judge(oracle.bank).argmax(1) == torch.arange(10)).float()
    # gan_test_acc is the judge's accuracy on the samples against the labels they were asked for.
    if shift == 0:
        assert metrics["test/gan_test_acc"] == pytest.approx(read_back[labels].mean().item(), abs=1e-6)
        assert metrics["test/gan_test_acc"] > 0.8
    else:
        assert metrics["test/gan_test_acc"] < 0.2  # a generator that draws the wrong digits


def test_judge_reads_penultimate_features_of_any_classifier():
    judge = ClassifierJudge(CNN(image_size=28, dense_units=[24]), TANH)
    judge.train()
    assert not judge.training  # stays in eval mode inside a module in training
    assert judge.features(torch.zeros(3, 1, 28, 28)).shape == (3, 24)
    assert judge(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_cgan_experiment_trains_tests_and_evaluates_from_checkpoint(tmp_path, mnist_root, judge_ckpt):
    cfg = train_config([*tiny_cgan(mnist_root), f"model.classifier_ckpt={judge_ckpt}"], tmp_path / "train")
    metrics, objects = train(cfg)
    # Three steps make no digits: the judge finds the samples far from the real test images and their labels
    # barely readable (real images: FID 0, labels read back over 90% of the time; see the oracle test).
    assert metrics["test/gan_test_acc"] < 0.5 and metrics["test/fid"] > 1.0
    best = objects["trainer"].checkpoint_callback.best_model_path
    assert torch.load(best, weights_only=True)["hyper_parameters"]["classifier_ckpt"] == str(judge_ckpt)
    eval_metrics, _ = evaluate(eval_config([f"ckpt_path={best}"], tmp_path / "eval"))
    # The checkpoint alone gives back the run's test figures: same generator, judge, images and seeded noise.
    for name in ("test/gan_test_acc", "test/fid", "test/d_loss", "test/g_loss"):
        assert eval_metrics[name] == pytest.approx(metrics[name].item(), rel=1e-3)


def test_cyclegan_experiment_reports_label_preservation(tmp_path, mnist_root, judge_ckpt):
    cfg = train_config([*tiny_cyclegan(mnist_root), f"model.classifier_ckpt={judge_ckpt}"], tmp_path / "train")
    metrics, objects = train(cfg)
    # The logged figures are those of the trained generators on the test images, worked out here again.
    model, datamodule = objects["model"].eval(), objects["datamodule"]
    judge = load_judge(judge_ckpt)
    errors, right, total = {"A": [], "B": []}, 0, 0
    with torch.no_grad():
        for batch in datamodule.test_dataloader():
            batch = datamodule.on_after_batch_transfer(batch, 0)
            images = model.translate(batch["A"], batch["B"])
            for domain in "AB":
                error = (images[f"cycled_{domain.lower()}"] - batch[domain]).abs().flatten(1).mean(1)
                errors[domain].append(error[batch[f"valid_{domain}"]])
            valid = batch["valid_A"]
            right += (judge(images["fake_b"][valid]).argmax(1) == batch["label_A"][valid]).sum().item()
            total += valid.sum().item()
    for domain in "AB":
        assert metrics[f"test/cycle_error_{domain}"] == pytest.approx(torch.cat(errors[domain]).mean().item(), rel=1e-4)
    assert metrics["test/label_acc"] == pytest.approx(right / total)
    best = objects["trainer"].checkpoint_callback.best_model_path
    eval_metrics, _ = evaluate(eval_config([f"ckpt_path={best}"], tmp_path / "eval"))
    assert math.isclose(eval_metrics["test/cycle_error_B"], metrics["test/cycle_error_B"], rel_tol=1e-4)


def test_missing_classifier_checkpoint_fails_before_training(tmp_path, mnist_root):
    model = ConditionalGAN(TINY_G, TINY_D, classifier_ckpt=str(tmp_path / "nope.ckpt"))
    data = MNISTDataModule(data_dir=str(mnist_root), download=False, val_fraction=0.0)
    with pytest.raises(CheckpointError, match="model.classifier_ckpt"):
        quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1).fit(model, data)


def write_domain(folder: Path, count: int, value: int, size: tuple[int, int]) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        image = torch.full((3, *size), value, dtype=torch.uint8)
        image[:, : size[0] // 2] = 255 - value  # top half differs: a crop or flip shows
        write_png(image, str(folder / f"{index}.png"))


def test_folder_datamodule_reads_resizes_and_crops(tmp_path):
    for split, count, value, size in (
        ("trainA", 5, 10, (40, 50)),
        ("trainB", 3, 200, (64, 64)),
        ("testA", 2, 10, (33, 33)),
        ("testB", 4, 200, (20, 30)),
    ):
        write_domain(tmp_path / split, count, value, size)
    data = ImageFolderUnpairedDataModule(root=str(tmp_path), load_size=36, crop_size=32, batch_size=4)
    data.setup()
    assert len(data.data_train) == 5 and len(data.data_test) == 4
    batch = data.on_after_batch_transfer(next(iter(data.test_dataloader())), 0)
    assert batch["A"].shape == (4, 3, 32, 32) and batch["B"].shape == (4, 3, 32, 32)
    # Pixels 0..255 reach the model as -1..1: A's flat halves are 10 and 245, B's 200 and 55.
    assert batch["A"].amin().item() == pytest.approx(10 / 127.5 - 1, abs=1e-6)
    assert batch["A"].amax().item() == pytest.approx(245 / 127.5 - 1, abs=1e-6)
    values_b = batch["B"].flatten()
    assert all(torch.isclose(values_b, torch.tensor(v / 127.5 - 1)).any() for v in (200, 55))
    assert batch["valid_A"].tolist() == [True, True, False, False]  # two test A images, each counted once
    assert (batch["label_A"] == -1).all()  # a folder has no labels


def test_folder_datamodule_reads_each_domain_with_its_channels(tmp_path):
    for split in ("trainA", "trainB", "testA", "testB"):
        write_domain(tmp_path / split, 2, 10, (32, 32))
    data = ImageFolderUnpairedDataModule(root=str(tmp_path), channels=[1, 3], load_size=32, crop_size=32)
    data.setup()
    for dataset in (data.data_train, data.data_test):
        assert dataset.images_a.shape[1:] == (1, 32, 32) and dataset.images_b.shape[1:] == (3, 32, 32)
    grey = ImageFolderUnpairedDataModule(root=str(tmp_path), channels=1, load_size=32, crop_size=32)
    grey.setup()
    assert grey.data_train.images_a.shape[1] == grey.data_train.images_b.shape[1] == 1
    for wrong in (2, [1, 2], [1, 3, 3]):
        with pytest.raises(ValueError, match=r"data.channels must be 1 \(grey\), 3 \(RGB\) or a pair of them"):
            ImageFolderUnpairedDataModule(root=str(tmp_path), channels=wrong)


def test_folder_datamodule_says_what_is_missing(tmp_path):
    data = ImageFolderUnpairedDataModule(root=str(tmp_path), load_size=32, crop_size=32)
    with pytest.raises(DatasetNotFoundError, match="trainA/, trainB/, testA/ and testB/"):
        data.setup()


def test_digits_mnist_pair_keeps_labels_and_shapes(mnist_root):
    data = DigitsMNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=16)
    data.setup()
    assert len(data.data_train.images_a) == 1438 and len(data.data_train.images_b) == 600
    assert data.data_train.images_a.shape[1:] == (1, 28, 28)
    # the upscaled digits sit on MNIST's 4-pixel empty border
    assert data.data_train.images_a[:, :, :4].max() == 0
    assert set(data.data_train.labels_a.tolist()) == set(range(10))


def test_digits_mnist_pair_on_real_mnist(shared_mnist):
    data = DigitsMNISTDataModule(data_dir=str(shared_mnist), download=False)
    data.setup()
    assert len(data.data_train.images_b) == 14048 and len(data.data_test.images_b) == 10000
    item = data.data_test[0]
    assert item["A"].shape == item["B"].shape == (1, 28, 28) and item["valid_A"] and item["valid_B"]
