import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from litlab.figures import image_grid, log_image
from litlab.models.base import LitlabModule, plain
from litlab.models.gan_eval import ClassifierJudge, check_judge_path, load_judge
from litlab.models.nets.build import build_net
from litlab.models.optim import GAN_ADAM, check_optimization, configure


class ImagePool:
    """A history of generated images for the discriminators (Shrivastava et al. 2017, as CycleGAN uses it).

    Until the pool is full every image is stored and returned as is. After that, each image is, with
    probability one half, swapped for a random stored one (which is returned, and the new image kept), and
    otherwise returned as is. A size of 0 turns the pool off.
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None):
        self.size = size
        self.generator = generator
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(1, generator=self.generator).item() < 0.5:
                index = int(torch.randint(0, self.size, (1,), generator=self.generator))
                out.append(self.images[index])
                self.images[index] = image
            else:
                out.append(image)
        return torch.stack(out)


def lsgan_loss(prediction: Tensor, target_is_real: bool) -> Tensor:
    """Least-squares GAN loss: mean squared distance of the discriminator's patch map to 1 (real) or 0 (fake)."""
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    return F.mse_loss(prediction, target)


def generator_loss(
    d_b_on_fake_b: Tensor,
    d_a_on_fake_a: Tensor,
    real_a: Tensor,
    cycled_a: Tensor,
    real_b: Tensor,
    cycled_b: Tensor,
    identity_b: Tensor | None = None,
    identity_a: Tensor | None = None,
    lambda_cycle: float = 10.0,
    lambda_identity: float = 0.5,
) -> dict[str, Tensor]:
    """CycleGAN's generator loss (both generators are trained on the sum, as in the reference code).

    adversarial: each translation should fool its domain's discriminator (least squares, target 1).
    cycle: A -> B -> A and B -> A -> B should give back the input (L1), weighted by `lambda_cycle`.
    identity: G_AB(b) should leave a real b unchanged and G_BA(a) a real a (L1), weighted by
        `lambda_cycle * lambda_identity`; skipped when the identity images are not given.
    """
    adversarial = lsgan_loss(d_b_on_fake_b, True) + lsgan_loss(d_a_on_fake_a, True)
    cycle = lambda_cycle * (F.l1_loss(cycled_a, real_a) + F.l1_loss(cycled_b, real_b))
    identity = torch.zeros_like(cycle)
    if identity_b is not None and identity_a is not None:
        identity = lambda_cycle * lambda_identity * (F.l1_loss(identity_b, real_b) + F.l1_loss(identity_a, real_a))
    return {"loss": adversarial + cycle + identity, "adversarial": adversarial, "cycle": cycle, "identity": identity}


def discriminator_loss(discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """Least-squares loss of one discriminator on real and (pooled, detached) fake images, halved as in the paper."""
    return (lsgan_loss(discriminator(real), True) + lsgan_loss(discriminator(fake.detach()), False)) / 2


def linear_decay(constant_epochs: int, decay_epochs: int):
    """The learning-rate factor of the reference recipe: 1 for `constant_epochs`, then linearly down to ~0."""

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - constant_epochs) / float(decay_epochs + 1)

    return factor


def fresh_copy(network: nn.Module) -> nn.Module:
    """An independent copy of a network with its parameters initialised anew."""
    twin = copy.deepcopy(network)
    for module in twin.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return twin


def with_settings(spec: Mapping[str, Any], **settings: Any) -> Mapping[str, Any]:
    """A `_target_` mapping with some arguments set; anything else is handed on as it is, for build_net to refuse."""
    return {**spec, **settings} if isinstance(spec, Mapping) else spec


class CycleGAN(LitlabModule):
    """CycleGAN (Zhu et al. 2017) after the paper's reference implementation.

    Two ResNet generators (G_AB: A -> B, G_BA: B -> A) and two PatchGAN discriminators (D_A, D_B), least-squares
    adversarial loss, cycle loss with weight `lambda_cycle` both ways, identity loss (weight
    `lambda_identity * lambda_cycle`), a pool of past fakes for the discriminators, one Adam for both generators
    and one for both discriminators, the learning rate constant for `lr_constant_epochs` and then decaying
    linearly to zero over `lr_decay_epochs`.

    Batches are dicts with images "A" and "B" in [-1, 1] (see `litlab.data.unpaired`); with labels "label_A"
    (>= 0) and `classifier_ckpt` set, the test reports `test/label_acc`: the accuracy of a classifier trained on
    domain B on G_AB(A) against A's labels (label preservation). The test always reports the cycle
    reconstruction errors `test/cycle_error_A` and `test/cycle_error_B` (mean absolute error in [-1, 1] units).

    Domains may differ in channels (grey MNIST <-> colour SVHN): the generator's `in_channels` are domain A's and
    its `out_channels` domain B's. From `_target_` mappings, G_BA is built with the two swapped, D_A with
    `in_channels` = A's and D_B with B's; the discriminator mapping's own `in_channels`, if any, is overridden, since
    each discriminator can only judge its domain's images. Modules cannot be rebuilt with other channels, so they are
    refused for such domains. The identity loss compares a domain's image with its translation: it needs equal
    channels (`use_identity=false` otherwise).

    Args:
        generator, discriminator: `_target_` mappings (or modules, copied) of one generator (A -> B) and one
            discriminator; each is built twice, one per direction or domain.
        optimizer: a `_target_` mapping of the optimizer class of both pairs (default Adam 2e-4, beta1 0.5).
        lambda_cycle, lambda_identity: loss weights (10 and 0.5 in the paper).
        use_identity: switches the identity loss on or off.
        pool_size: images kept in each discriminator's history pool (50; 0 turns it off).
        lr_constant_epochs, lr_decay_epochs: the learning-rate schedule.
        classifier_ckpt: a checkpoint of `experiment=mnist_cnn` for label preservation (None: skip it).
        grid_images: images of each domain in the epoch grids.
    """

    def __init__(
        self,
        generator: nn.Module | Mapping[str, Any],
        discriminator: nn.Module | Mapping[str, Any],
        optimizer: Mapping[str, Any] | None = None,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        use_identity: bool = True,
        pool_size: int = 50,
        lr_constant_epochs: int = 100,
        lr_decay_epochs: int = 100,
        classifier_ckpt: str | None = None,
        grid_images: int = 8,
    ):
        super().__init__()
        optimizer, _ = check_optimization(optimizer, default=GAN_ADAM)
        self.save_settings(
            generator=generator,
            discriminator=discriminator,
            optimizer=optimizer,
            lambda_cycle=lambda_cycle,
            lambda_identity=lambda_identity,
            use_identity=use_identity,
            pool_size=pool_size,
            lr_constant_epochs=lr_constant_epochs,
            lr_decay_epochs=lr_decay_epochs,
            classifier_ckpt=classifier_ckpt,
            grid_images=grid_images,
        )
        self.automatic_optimization = False
        if pool_size < 0:
            raise ValueError(f"model.pool_size must be 0 (no pool) or a number of images, got {pool_size}.")
        self.g_ab, self.g_ba, self.d_a, self.d_b = self._build_players(plain(generator), plain(discriminator))
        channels_a, channels_b = self.g_ab.in_channels, self.g_ab.out_channels
        if use_identity and channels_a != channels_b:
            raise ValueError(
                f"The identity loss needs domains with the same number of channels (A has {channels_a}, B has "
                f"{channels_b}): set model.use_identity=false."
            )
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)
        self.judge: ClassifierJudge | None = None
        self.test_label_acc: MulticlassAccuracy | None = None
        self.test_cycle_a, self.test_cycle_b = MeanMetric(), MeanMetric()
        self.grid_batch: dict[str, Tensor] | None = None
        self.predict_direction = "AtoB"

    @staticmethod
    def _build_players(
        generator: nn.Module | Mapping[str, Any], discriminator: nn.Module | Mapping[str, Any]
    ) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
        """G_AB, G_BA, D_A and D_B as independent networks, each with its direction's or domain's channels.

        A mapping is built once per network; a module is used for the first and copied, re-initialised, for the second.
        """
        g_ab = build_net(generator, "generator")
        channels_a, channels_b = g_ab.in_channels, g_ab.out_channels
        modules = isinstance(generator, nn.Module) or isinstance(discriminator, nn.Module)
        if modules and channels_a != channels_b:
            raise ValueError(
                f"Domains with {channels_a} and {channels_b} channels need model.generator and model.discriminator "
                "as _target_ mappings, which are built with each domain's channels: pass mappings, not modules."
            )
        if isinstance(generator, nn.Module):
            g_ba = fresh_copy(generator)
        else:
            g_ba = build_net(with_settings(generator, in_channels=channels_b, out_channels=channels_a), "generator")
        if isinstance(discriminator, nn.Module):
            return g_ab, g_ba, discriminator, fresh_copy(discriminator)
        d_a = build_net(with_settings(discriminator, in_channels=channels_a), "discriminator")
        d_b = build_net(with_settings(discriminator, in_channels=channels_b), "discriminator")
        return g_ab, g_ba, d_a, d_b

    def setup(self, stage: str) -> None:
        if self.hparams.classifier_ckpt and stage in ("fit", "test"):
            check_judge_path(self.hparams.classifier_ckpt)

    def forward(self, images_a: Tensor) -> Tensor:
        """Translates domain A to domain B."""
        return self.g_ab(images_a)

    def translate(self, real_a: Tensor, real_b: Tensor) -> dict[str, Tensor]:
        fake_b, fake_a = self.g_ab(real_a), self.g_ba(real_b)
        return {"fake_b": fake_b, "fake_a": fake_a, "cycled_a": self.g_ba(fake_b), "cycled_b": self.g_ab(fake_a)}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real_a, real_b = batch["A"], batch["B"]
        opt_g, opt_d = self.optimizers()
        if self.grid_batch is None:
            count = self.hparams.grid_images
            self.grid_batch = {"A": real_a[:count].detach().clone(), "B": real_b[:count].detach().clone()}

        self.toggle_optimizer(opt_g)
        images = self.translate(real_a, real_b)
        identity = {}
        if self.hparams.use_identity:
            identity = {"identity_b": self.g_ab(real_b), "identity_a": self.g_ba(real_a)}
        losses = generator_loss(
            self.d_b(images["fake_b"]),
            self.d_a(images["fake_a"]),
            real_a,
            images["cycled_a"],
            real_b,
            images["cycled_b"],
            **identity,
            lambda_cycle=self.hparams.lambda_cycle,
            lambda_identity=self.hparams.lambda_identity,
        )
        opt_g.zero_grad()
        self.manual_backward(losses["loss"])
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        self.toggle_optimizer(opt_d)
        d_a_loss = discriminator_loss(self.d_a, real_a, self.pool_a.query(images["fake_a"]))
        d_b_loss = discriminator_loss(self.d_b, real_b, self.pool_b.query(images["fake_b"]))
        opt_d.zero_grad()
        self.manual_backward(d_a_loss + d_b_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        self.log("train/g_loss", losses["loss"], on_step=False, on_epoch=True, prog_bar=True)
        parts = {f"train/g_{name}": value for name, value in losses.items() if name != "loss"}
        self.log_dict(parts, on_step=False, on_epoch=True)
        self.log_dict({"train/d_a_loss": d_a_loss, "train/d_b_loss": d_b_loss}, on_step=False, on_epoch=True)

    @torch.no_grad()
    def sample_grid(self, real_a: Tensor, real_b: Tensor) -> Tensor:
        """Rows: A, G_AB(A), G_BA(G_AB(A)), then B, G_BA(B), G_AB(G_BA(B))."""
        was_training = self.training
        self.eval()
        images = self.translate(real_a, real_b)
        self.train(was_training)
        rows_a = [real_a, images["fake_b"], images["cycled_a"]]
        rows_b = [real_b, images["fake_a"], images["cycled_b"]]
        count = min(len(real_a), len(real_b))
        rows = [row[:count] for row in rows_a + rows_b]
        channels = max(row.shape[1] for row in rows)
        # Grey and colour domains share one grid: expand repeats a grey row's one channel to three and leaves rows
        # that have them already as they are.
        rows = [row.expand(-1, channels, -1, -1) for row in rows]
        return image_grid(torch.cat(rows), nrow=count)

    def on_train_epoch_end(self) -> None:
        for scheduler in self.lr_schedulers():
            scheduler.step()
        if self.trainer.is_global_zero and self.loggers and self.grid_batch is not None:
            grid = self.sample_grid(self.grid_batch["A"], self.grid_batch["B"])
            log_image(self.loggers, "samples/cycle", grid, self.current_epoch)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """`batch["images"]` (in [-1, 1]) translated in the direction `predict_direction`: "AtoB" or "BtoA"."""
        generator = self.g_ba if self.predict_direction == "BtoA" else self.g_ab
        return generator(batch["images"])

    def on_test_start(self) -> None:
        # Built after the checkpoint is restored, so the judge's weights never enter the CycleGAN's state_dict.
        if self.hparams.classifier_ckpt:
            self.judge = load_judge(self.hparams.classifier_ckpt).to(self.device)
            self.test_label_acc = MulticlassAccuracy(self.judge.num_classes, average="micro").to(self.device)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real_a, real_b = batch["A"], batch["B"]
        images = self.translate(real_a, real_b)
        valid_a, valid_b = batch["valid_A"], batch["valid_B"]
        if valid_a.any():
            self.test_cycle_a.update((images["cycled_a"] - real_a).abs().flatten(1).mean(1)[valid_a])
        if valid_b.any():
            self.test_cycle_b.update((images["cycled_b"] - real_b).abs().flatten(1).mean(1)[valid_b])
        labels = batch.get("label_A")
        if self.judge is not None and labels is not None:
            known = valid_a & (labels >= 0)
            if known.any():
                preds = self.judge(images["fake_b"][known]).argmax(dim=1)
                self.test_label_acc.update(preds, labels[known])

    def on_test_epoch_end(self) -> None:
        self.log("test/cycle_error_A", self.test_cycle_a.compute(), sync_dist=True)
        self.log("test/cycle_error_B", self.test_cycle_b.compute(), sync_dist=True)
        self.test_cycle_a.reset()
        self.test_cycle_b.reset()
        if self.test_label_acc is not None and self.test_label_acc.update_called:
            self.log("test/label_acc", self.test_label_acc.compute(), sync_dist=True)
        self.judge, self.test_label_acc = None, None

    def configure_optimizers(self) -> tuple[list[Optimizer], list[LambdaLR]]:
        settings = self.hparams.optimizer
        opt_g = configure([*self.g_ab.parameters(), *self.g_ba.parameters()], settings)["optimizer"]
        opt_d = configure([*self.d_a.parameters(), *self.d_b.parameters()], settings)["optimizer"]
        factor = linear_decay(self.hparams.lr_constant_epochs, self.hparams.lr_decay_epochs)
        return [opt_g, opt_d], [LambdaLR(opt_g, factor), LambdaLR(opt_d, factor)]
