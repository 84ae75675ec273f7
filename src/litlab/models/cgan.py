from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from litlab.data.pixels import TANH
from litlab.figures import image_grid, log_image
from litlab.models.base import LitlabModule, plain
from litlab.models.gan_eval import GenerationMetrics, check_judge_path, load_judge
from litlab.models.nets.build import build_net
from litlab.models.optim import GAN_ADAM, check_optimization, configure


class ConditionalGAN(LitlabModule):
    """A conditional GAN trained with BCE-with-logits: one discriminator step, then one generator step per batch.

    Real batches arrive in their datamodule's pixel convention (`pixels`: MNIST's standardised values) and
    are mapped to [-1, 1], the generator's Tanh range. Every epoch a grid from fixed noise goes to TensorBoard,
    one row per class. At test time, with `classifier_ckpt` set, the generator is judged by a classifier trained on real
    data: `test/gan_test_acc` (its accuracy on generated images against their labels) and `test/fid` (FID on
    its penultimate features).

    Args:
        generator, discriminator: the networks, as nn.Modules or `_target_` mappings (see `build_net`);
            the generator must expose `latent_dim` and `num_classes`.
        optimizer: a `_target_` mapping of the optimizer class of both players (default Adam 2e-4, beta1 0.5).
        classifier_ckpt: a checkpoint of `experiment=mnist_cnn` for the test metrics (None: losses only).
        samples_per_class: columns of the epoch grid.
    """

    def __init__(
        self,
        generator: nn.Module | Mapping[str, Any],
        discriminator: nn.Module | Mapping[str, Any],
        optimizer: Mapping[str, Any] | None = None,
        classifier_ckpt: str | None = None,
        samples_per_class: int = 10,
    ):
        super().__init__()
        optimizer, _ = check_optimization(optimizer, default=GAN_ADAM)
        self.save_settings(
            generator=generator,
            discriminator=discriminator,
            optimizer=optimizer,
            classifier_ckpt=classifier_ckpt,
            samples_per_class=samples_per_class,
        )
        self.automatic_optimization = False
        self.generator = build_net(plain(generator), "generator")
        self.discriminator = build_net(plain(discriminator), "discriminator")
        self.latent_dim, self.num_classes = self.generator.latent_dim, self.generator.num_classes
        noise = torch.randn(
            self.num_classes * samples_per_class, self.latent_dim, generator=torch.Generator().manual_seed(0)
        )
        self.register_buffer("fixed_noise", noise, persistent=False)
        self.register_buffer(
            "fixed_labels", torch.arange(self.num_classes).repeat_interleave(samples_per_class), persistent=False
        )
        self.metrics: GenerationMetrics | None = None

    def setup(self, stage: str) -> None:
        if self.hparams.classifier_ckpt and stage in ("fit", "test"):
            check_judge_path(self.hparams.classifier_ckpt)

    def forward(self, noise: Tensor, labels: Tensor) -> Tensor:
        return self.generator(noise, labels)

    def sample(self, labels: Tensor) -> Tensor:
        """Images in [-1, 1] for the given labels, from fresh noise."""
        return self.generator(torch.randn(len(labels), self.latent_dim, device=labels.device), labels)

    def real_images(self, images: Tensor) -> Tensor:
        """Real batches in [-1, 1], from their datamodule's pixel convention (as they are without one)."""
        return images if self.pixels is None else self.pixels.convert(images, TANH)

    def discriminator_loss(self, real: Tensor, fake: Tensor, labels: Tensor) -> Tensor:
        real_logits = self.discriminator(real, labels)
        fake_logits = self.discriminator(fake, labels)
        real_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return (real_loss + fake_loss) / 2

    def generator_loss(self, fake: Tensor, labels: Tensor) -> Tensor:
        logits = self.discriminator(fake, labels)
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def _step(self, optimizer: Optimizer, loss: Tensor) -> None:
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        real = self.real_images(images)
        opt_d, opt_g = self.optimizers()
        fake = self.sample(labels)

        # toggle_optimizer freezes the other player's parameters, so each step moves only its own.
        self.toggle_optimizer(opt_d)
        d_loss = self.discriminator_loss(real, fake.detach(), labels)
        self._step(opt_d, d_loss)
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        g_loss = self.generator_loss(fake, labels)
        self._step(opt_g, g_loss)
        self.untoggle_optimizer(opt_g)

        self.log("train/d_loss", d_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/g_loss", g_loss, on_step=False, on_epoch=True, prog_bar=True)

    @torch.no_grad()
    def sample_grid(self) -> Tensor:
        """The fixed-noise samples as one image: row k shows class k."""
        was_training = self.generator.training
        self.generator.eval()
        images = self.generator(self.fixed_noise, self.fixed_labels)
        self.generator.train(was_training)
        return image_grid(images, nrow=self.hparams.samples_per_class)

    def on_train_epoch_end(self) -> None:
        if self.trainer.is_global_zero and self.loggers:
            log_image(self.loggers, "samples/fixed_noise", self.sample_grid(), self.current_epoch)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Images in [-1, 1] of the classes `batch["labels"]`, from fresh noise (seed it for repeatable images)."""
        return self.sample(batch["labels"])

    def on_test_start(self) -> None:
        # Built here, after the checkpoint is restored, so the judge's weights never enter the GAN's state_dict.
        if self.hparams.classifier_ckpt:
            self.metrics = GenerationMetrics(load_judge(self.hparams.classifier_ckpt)).to(self.device)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        real = self.real_images(images)
        fake = self.sample(labels)
        self.log("test/d_loss", self.discriminator_loss(real, fake, labels), on_step=False, on_epoch=True)
        self.log("test/g_loss", self.generator_loss(fake, labels), on_step=False, on_epoch=True)
        if self.metrics is not None:
            self.metrics.update(real, fake, labels)

    def on_test_epoch_end(self) -> None:
        if self.metrics is not None:
            self.log_dict({f"test/{name}": value for name, value in self.metrics.compute().items()}, sync_dist=True)
            self.metrics = None

    def configure_optimizers(self) -> list[Optimizer]:
        settings = self.hparams.optimizer
        return [
            configure(self.discriminator.parameters(), settings)["optimizer"],
            configure(self.generator.parameters(), settings)["optimizer"],
        ]
