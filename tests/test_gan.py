"""The conditional GAN, CycleGAN, their networks, the unpaired datamodules and the generated-image metrics."""

import math
from pathlib import Path

import pytest
import torch
from lightning import Callback, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchvision.io import write_png

from litlab.data import DigitsMNISTDataModule, ImageFolderUnpairedDataModule, MNISTDataModule
from litlab.data.base import DatasetNotFoundError
from litlab.eval import evaluate
from litlab.models import ConditionalGAN, CycleGAN
from litlab.models.cyclegan import ImagePool, discriminator_loss, generator_loss, linear_decay
from litlab.models.gan_eval import ClassifierJudge, GenerationMetrics, load_judge
from litlab.models.nets import CNN, ConditionalDiscriminator, ConditionalGenerator, PatchDiscriminator, ResnetGenerator
from litlab.train import train
from litlab.utils.checkpoint import CheckpointError
from litlab.utils.pixels import TANH
from tests.helpers.checkpoints import tiny_cgan, tiny_cyclegan
from tests.helpers.config import eval_config, train_config

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
    quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=0, callbacks=[recorder]).fit(
        model, data
    )
    before_d, before_g, after = recorder.snapshots
    g_names = {n for n in before_d if n.startswith("generator.")}
    d_names = {n for n in before_d if n.startswith("discriminator.")}
    assert changed(before_d, before_g) == d_names  # the discriminator step moves all of D and nothing else
    assert changed(before_g, after) == g_names  # the generator step moves all of G and nothing else


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


def test_cyclegan_discriminator_loss_is_half_the_least_squares_sum():
    real, fake = torch.full((2, 1, 2, 2), 0.5), torch.full((2, 1, 2, 2), 0.25)
    # (0.5 - 1)^2 for real, (0.25 - 0)^2 for fake, halved
    assert discriminator_loss(ScoreByMean(), real, fake).item() == pytest.approx((0.25 + 0.0625) / 2)


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
    with pytest.raises(ValueError, match="same number of channels: set model.use_identity=false"):
        CycleGAN({**TINY_RESNET, "out_channels": 3}, TINY_PATCH)
    assert not CycleGAN({**TINY_RESNET, "out_channels": 3}, TINY_PATCH, use_identity=False).hparams.use_identity


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
    assert {int(v) for v in out[from_history].flatten()} <= seen
    assert torch.equal(ImagePool(0).query(new), new)


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
    assert {"test/gan_test_acc", "test/fid"} <= set(eval_metrics)


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
