"""The networks of the GANs: a conditional DCGAN pair for MNIST and CycleGAN's ResNet generator and PatchGAN.

The CycleGAN networks follow the reference implementation of the CycleGAN paper
(junyanz/pytorch-CycleGAN-and-pix2pix: `ResnetGenerator`, `NLayerDiscriminator`) with instance norm.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """Labels (N,) as float one-hot vectors (N, num_classes)."""
    return F.one_hot(labels.long(), num_classes).float()


class ConditionalGenerator(nn.Module):
    """Noise and a class to an image: the one-hot class is concatenated to the noise vector.

    Blocks of ConvTranspose2d -> BatchNorm -> ReLU double the size from `image_size // 4` twice, and the last
    layer ends in Tanh, so images lie in [-1, 1].

    Args:
        latent_dim: length of the noise vector.
        num_classes: number of classes (length of the one-hot vector).
        out_channels, image_size: the images' shape; image_size must be divisible by 4 (28 for MNIST).
        base_channels: width of the last hidden block; the first has twice as many.
    """

    def __init__(
        self,
        latent_dim: int = 64,
        num_classes: int = 10,
        out_channels: int = 1,
        image_size: int = 28,
        base_channels: int = 64,
    ):
        super().__init__()
        if image_size % 4:
            raise ValueError(
                f"The generator doubles its size twice, so image_size must be divisible by 4, got {image_size}."
            )
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.output_shape = (out_channels, image_size, image_size)
        wide = 2 * base_channels
        self.net = nn.Sequential(
            # A 1x1 input and a kernel the size of the first feature map act as a dense layer to it.
            nn.ConvTranspose2d(latent_dim + num_classes, wide, image_size // 4, 1, 0, bias=False),
            nn.BatchNorm2d(wide),
            nn.ReLU(True),
            nn.ConvTranspose2d(wide, base_channels, 4, 2, 1, bias=False),
            nn.BatchNorm2d(base_channels),
            nn.ReLU(True),
            nn.ConvTranspose2d(base_channels, out_channels, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, noise: Tensor, labels: Tensor) -> Tensor:
        inputs = torch.cat([noise, one_hot(labels, self.num_classes)], dim=1)
        return self.net(inputs[:, :, None, None])


class ConditionalDiscriminator(nn.Module):
    """An image and a class to one logit: the class enters as one-hot channels concatenated to the image.

    Blocks of Conv2d -> BatchNorm -> LeakyReLU(0.2) halve the size twice; as in DCGAN the first block has no
    batch norm (normalising the raw input only removes information), and a conv over the whole remaining map
    gives the logit, to be used with BCE-with-logits.

    Args:
        num_classes, in_channels, image_size: the data's classes and shape (image_size divisible by 4).
        base_channels: width of the first block; the second has twice as many.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, base_channels: int = 64):
        super().__init__()
        if image_size % 4:
            raise ValueError(
                f"The discriminator halves its size twice, so image_size must be divisible by 4, got {image_size}."
            )
        self.num_classes = num_classes
        self.input_shape = (in_channels, image_size, image_size)
        wide = 2 * base_channels
        self.net = nn.Sequential(
            nn.Conv2d(in_channels + num_classes, base_channels, 4, 2, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(base_channels, wide, 4, 2, 1, bias=False),
            nn.BatchNorm2d(wide),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(wide, 1, image_size // 4, 1, 0),
        )

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        n, _, h, w = images.shape
        channels = one_hot(labels, self.num_classes)[:, :, None, None].expand(n, self.num_classes, h, w)
        return self.net(torch.cat([images, channels], dim=1)).view(n)


class ResnetBlock(nn.Module):
    """Two 3x3 convs with reflection padding and instance norm, added to the input."""

    def __init__(self, channels: int, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's image-to-image generator: 7x7 stem, strided downsampling, ResNet blocks, upsampling, Tanh.

    Args:
        in_channels, out_channels: channels of the input and output images.
        base_channels: filters of the stem (`ngf`, 64 in the paper).
        num_blocks: ResNet blocks at the bottleneck (9 for 256x256 images in the paper, 6 for 128x128).
        num_downsampling: stride-2 convs (and matching transposed convs); image sides must divide by 2**this.
        dropout: dropout inside the ResNet blocks.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_blocks: int = 9,
        num_downsampling: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.size_multiple = 2**num_downsampling
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, base_channels, 7),
            nn.InstanceNorm2d(base_channels),
            nn.ReLU(True),
        ]
        channels = base_channels
        for _ in range(num_downsampling):
            layers += [nn.Conv2d(channels, 2 * channels, 3, 2, 1), nn.InstanceNorm2d(2 * channels), nn.ReLU(True)]
            channels *= 2
        layers += [ResnetBlock(channels, dropout) for _ in range(num_blocks)]
        for _ in range(num_downsampling):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 3, 2, 1, output_padding=1),
                nn.InstanceNorm2d(channels // 2),
                nn.ReLU(True),
            ]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % self.size_multiple or x.shape[-2] % self.size_multiple:
            raise ValueError(
                f"The generator needs image sides divisible by {self.size_multiple}, got {tuple(x.shape[-2:])}: "
                "change data.crop_size or model.generator.num_downsampling."
            )
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """CycleGAN's PatchGAN: a map of logits, each judging one overlapping patch of the image as real or fake.

    Args:
        in_channels: channels of the images.
        base_channels: filters of the first conv (`ndf`, 64 in the paper).
        num_layers: stride-2 convs (3 gives the paper's 70x70 patches; 2 suits 28x28 digits).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, num_layers: int = 3):
        super().__init__()
        self.in_channels = in_channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        channels = base_channels
        for index in range(1, num_layers + 1):
            wide = base_channels * min(2**index, 8)
            # The last of these keeps the size (stride 1), as in the reference.
            stride = 2 if index < num_layers else 1
            layers += [nn.Conv2d(channels, wide, 4, stride, 1), nn.InstanceNorm2d(wide), nn.LeakyReLU(0.2, True)]
            channels = wide
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
