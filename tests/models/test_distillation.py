import math

import pytest
import torch
from lightning import Callback, Trainer

from litlab.checkpoints.load import CheckpointError
from litlab.data import MNISTDataModule
from litlab.eval import evaluate
from litlab.models import DistillationModule
from litlab.models.distillation import kd_loss
from litlab.models.nets.build import build_net
from litlab.train import train
from tests.helpers.config import eval_config, train_config

STUDENT = {"_target_": "litlab.models.nets.CNN", "in_channels": 1, "image_size": 28, "conv_channels": [8]}
TEACHER = {
    "_target_": "litlab.models.nets.ResNet",
    "arch": "resnet18",
    "in_channels": 1,
    "image_size": 28,
    "stem": "imagenet",
}


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def by_hand(student: list[list[float]], teacher: list[list[float]], labels: list[int], alpha: float, tau: float):
    hard = soft = 0.0
    for s, t, y in zip(student, teacher, labels, strict=True):
        hard -= math.log(softmax(s)[y])
        p_t = softmax([v / tau for v in t])
        p_s = softmax([v / tau for v in s])
        soft -= sum(pt * math.log(ps) for pt, ps in zip(p_t, p_s, strict=True))
    n = len(labels)
    return (1 - alpha) * hard / n + alpha * tau**2 * soft / n, hard / n, tau**2 * soft / n


@pytest.mark.parametrize(("alpha", "tau"), [(0.0, 1.0), (1.0, 1.0), (0.3, 1.0), (0.5, 4.0), (1.0, 20.0)])
def test_kd_loss_matches_the_formula(alpha, tau):
    student = [[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]]
    teacher = [[1.5, 0.0, -2.0], [-1.0, 4.0, 1.0]]
    labels = [0, 2]
    loss, hard, soft = kd_loss(torch.tensor(student), torch.tensor(teacher), torch.tensor(labels), alpha, tau)
    expected = by_hand(student, teacher, labels, alpha, tau)
    for got, want in zip((loss, hard, soft), expected, strict=True):
        assert got.item() == pytest.approx(want, rel=1e-5)


def test_kd_loss_edge_cases():
    student, teacher, labels = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    _, hard, soft_1 = kd_loss(student, teacher, labels, 0.5, 1.0)
    assert kd_loss(student, teacher, labels, 0.0, 3.0)[0] == pytest.approx(hard.item())  # alpha 0: plain CE
    loss_1, _, _ = kd_loss(student, teacher, labels, 1.0, 1.0)
    assert loss_1.item() == pytest.approx(soft_1.item())  # alpha 1: only the teacher
    # tau^2 scaling: at tau = 4 the soft part is 16 times the soft cross-entropy at that temperature
    _, _, soft_4 = kd_loss(student, teacher, labels, 1.0, 4.0)
    plain_ce = -(torch.softmax(teacher / 4, 1) * torch.log_softmax(student / 4, 1)).sum(1).mean()
    assert soft_4.item() == pytest.approx(16 * plain_ce.item(), rel=1e-5)


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory) -> str:
    """A teacher checkpoint as train.py writes it: the net's spec in the hyperparameters, its weights prefixed."""
    torch.manual_seed(0)
    net = build_net(TEACHER)
    path = tmp_path_factory.mktemp("teacher") / "teacher.ckpt"
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"net": TEACHER}}, path)
    return str(path)


class TeacherWatch(Callback):
    """Records, at every training step, whether the teacher was in train mode and what dtypes came out."""

    def __init__(self):
        self.teacher_training, self.dtypes = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.teacher_training.append(pl_module.teacher.training)
        pl_module.teacher.register_forward_hook(lambda m, args, out: self.dtypes.append(("teacher", out.dtype)))
        pl_module.net.register_forward_hook(lambda m, args, out: self.dtypes.append(("student", out.dtype)))


def test_teacher_gets_no_gradient_and_does_not_change(teacher_ckpt, mnist_root):
    model = DistillationModule(STUDENT, teacher_ckpt=teacher_ckpt, alpha=0.7, tau=3.0)
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in model.net.state_dict().items()}
    watch = TeacherWatch()
    trainer = Trainer(
        accelerator="cpu",
        max_steps=2,
        limit_val_batches=0,
        precision="bf16-mixed",
        callbacks=[watch],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(model, datamodule=MNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=32))
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key  # weights and batch-norm buffers alike
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert watch.teacher_training == [False, False]
    assert any(not torch.equal(v, model.net.state_dict()[k]) for k, v in student_before.items())
    # Both networks ran under the same autocast: the teacher's logits have the student's dtype.
    dtypes = dict(watch.dtypes)
    assert dtypes["teacher"] == dtypes["student"] == torch.bfloat16
    optimized = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in model.teacher.parameters()}
    # The two parts are logged once per epoch, and make up the training loss with weights 0.3 and 0.7.
    logged = trainer.logged_metrics
    assert {"train/loss", "train/loss_ce", "train/loss_kd"} <= set(logged) and not any("_step" in k for k in logged)
    mixed = 0.3 * logged["train/loss_ce"] + 0.7 * logged["train/loss_kd"]
    assert logged["train/loss"].item() == pytest.approx(mixed.item(), rel=1e-4)
    # The test also reports the teacher's own accuracy on the same images.
    data = MNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=32)
    (metrics,) = Trainer(accelerator="cpu", limit_test_batches=1, logger=False, enable_progress_bar=False).test(
        model, datamodule=data, verbose=False
    )
    x, y = data.on_after_batch_transfer(next(iter(data.test_dataloader())), 0)
    assert metrics["test/teacher_acc"] == pytest.approx((model.teacher(x).argmax(1) == y).float().mean().item())


def test_distillation_needs_a_teacher_unless_alpha_is_zero(tmp_path):
    with pytest.raises(ValueError, match="needs a teacher: set model.teacher_ckpt"):
        DistillationModule(STUDENT, alpha=0.5)
    assert DistillationModule(STUDENT, alpha=0.0).teacher is None
    with pytest.raises(ValueError, match="alpha must be in"):
        DistillationModule(STUDENT, alpha=1.5)


SMALL_TEACHER = {**STUDENT, "conv_channels": [4], "dense_units": [16]}


@pytest.mark.parametrize(("alpha", "tau"), [(0.0, 4.0), (0.25, 2.0), (0.75, 2.0), (1.0, 5.0), (None, None)])
def test_training_step_weighs_labels_and_teacher_by_alpha_at_temperature_tau(alpha, tau):
    torch.manual_seed(0)
    if alpha is None:  # the defaults: Hinton et al.'s even mix at temperature 4
        model, alpha, tau = DistillationModule(STUDENT, teacher_net=SMALL_TEACHER).eval(), 0.5, 4.0
    else:
        model = DistillationModule(STUDENT, teacher_net=SMALL_TEACHER, alpha=alpha, tau=tau).eval()
    x, y = torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5])
    calls = []
    model.teacher.register_forward_hook(lambda *args: calls.append(1))
    loss = model.training_step((x, y), 0)
    assert len(calls) == (alpha > 0)  # alpha = 0 is plain training: the teacher costs nothing
    with torch.no_grad():
        student, teacher = model.net(x).tolist(), model.teacher(x).tolist()
    assert loss.item() == pytest.approx(by_hand(student, teacher, y.tolist(), alpha, tau)[0], rel=1e-5)
    assert loss.requires_grad and not any(p.requires_grad for p in model.teacher.parameters())


def test_teacher_stays_in_eval_mode_when_the_student_trains():
    model = DistillationModule(STUDENT, teacher_net=SMALL_TEACHER, alpha=0.5)
    assert model.train() is model
    assert model.training and model.net.training and not model.teacher.training
    assert not model.train(False).net.training


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": -0.1}, r"model.alpha must be in \[0, 1\], got -0.1"),
        ({"alpha": 1.1}, r"model.alpha must be in \[0, 1\], got 1.1"),
        ({"tau": 0.0}, "model.tau must be positive, got 0.0"),
        ({"tau": -1.0}, "model.tau must be positive"),
        ({"teacher_net": {**SMALL_TEACHER, "num_classes": 5}}, "teacher predicts 5 classes but the student 10"),
        ({"teacher_net": {**SMALL_TEACHER, "num_classes": 12}}, "teacher predicts 12 classes but the student 10"),
    ],
)
def test_bad_distillation_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DistillationModule(STUDENT, **{"teacher_net": SMALL_TEACHER, **kwargs})


def test_distillation_edge_settings_are_accepted():
    model = DistillationModule(STUDENT, teacher_net=SMALL_TEACHER, alpha=1.0, tau=0.01)
    assert (model.hparams.alpha, model.hparams.tau) == (1.0, 0.01)
    # Class counts compare by value: 300 from two sources is two int objects, and still the same count.
    many = DistillationModule({**STUDENT, "num_classes": 300}, teacher_net={**SMALL_TEACHER, "num_classes": int("300")})
    assert many.teacher.num_classes == many.num_classes == 300


def test_teacher_weights_come_from_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = build_net(SMALL_TEACHER)
    # A teacher trained with model.compile=true: its keys carry torch.compile's prefix.
    state = {f"net._orig_mod.{k}": v for k, v in net.state_dict().items()}
    path = tmp_path / "teacher.ckpt"
    torch.save(
        {
            "state_dict": {**state, "val_acc_best.max_value": torch.tensor(0.9)},
            "hyper_parameters": {"net": SMALL_TEACHER},
        },
        path,
    )
    model = DistillationModule(STUDENT, teacher_ckpt=str(path), alpha=0.5)
    assert model.hparams.teacher_net == SMALL_TEACHER
    for key, value in net.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[key], value), key
    torch.save({"state_dict": state, "hyper_parameters": {}}, tmp_path / "bare.ckpt")
    with pytest.raises(CheckpointError, match="holds no network spec.*kd_teacher_linear"):
        DistillationModule(STUDENT, teacher_ckpt=str(tmp_path / "bare.ckpt"), alpha=0.5)


SMALL_STUDENT = [
    "~model.net",
    "+model.net={_target_:litlab.models.nets.CNN,in_channels:1,image_size:28,conv_channels:[8,16],dense_units:[32]}",
    "model/optimizer=adam",
    "model.optimizer.lr=0.003",
    "trainer.max_epochs=3",
]
# The experiment's own student (SGD, one-cycle) needs more steps on 540 images.
RESNET_STUDENT = ["model.net.in_channels=1", "model.net.image_size=28", "trainer.max_epochs=8"]


@pytest.mark.parametrize(
    "student",
    [
        pytest.param(SMALL_STUDENT, id="cnn"),
        pytest.param(RESNET_STUDENT, id="resnet18-cifar-stem", marks=pytest.mark.slow),
    ],
)
def test_student_distilled_from_a_trained_teacher_learns(tmp_path, mnist_root, student):
    data = [f"paths.data_dir={mnist_root}", "data.download=false", "logger=csv"]
    teacher_metrics, teacher_objects = train(
        train_config(
            ["experiment=mnist_cnn", *data, "model.net.conv_channels=[16,32]", "trainer.max_epochs=2"],
            tmp_path / "teacher",
        )
    )
    teacher_ckpt = teacher_objects["trainer"].checkpoint_callback.best_model_path
    student_overrides = [
        "experiment=kd_student",
        "data=mnist",
        *data,
        *student,
        f"model.teacher_ckpt={teacher_ckpt}",
        "model.alpha=0.7",
        "model.tau=4",
        "data.batch_size=64",
    ]
    metrics, objects = train(train_config(student_overrides, tmp_path / "student"))
    assert metrics["test/acc"] > 0.6  # ten classes: chance is 0.1
    # The logged parts make up the training loss with the configured weights.
    mixed = 0.3 * metrics["train/loss_ce"] + 0.7 * metrics["train/loss_kd"]
    assert metrics["train/loss"] == pytest.approx(mixed.item(), rel=1e-4)
    assert math.isclose(metrics["test/teacher_acc"], teacher_metrics["test/acc"], abs_tol=1e-6)
    # The student's checkpoint carries its teacher: it evaluates without the teacher's file.
    best = objects["trainer"].checkpoint_callback.best_model_path
    for path in (tmp_path / "teacher" / "checkpoints").iterdir():
        path.unlink()
    eval_metrics, _ = evaluate(eval_config([f"ckpt_path={best}"], tmp_path / "eval"))
    assert math.isclose(eval_metrics["test/acc"], metrics["test/acc"], abs_tol=1e-6)
    assert torch.load(best, weights_only=True)["hyper_parameters"]["teacher_net"]["_target_"].endswith("CNN")


def test_alpha_tau_search_composes(tmp_path):
    cfg = train_config(["experiment=kd_student", "hparams_search=kd_alpha_tau", "model.teacher_ckpt=t.ckpt"], tmp_path)
    assert cfg.hydra.sweeper.params == {"model.alpha": "interval(0.0, 1.0)", "model.tau": "interval(1.0, 20.0)"}
    assert cfg.hydra.sweeper.direction == "maximize" and cfg.optimized_metric == "val/acc_best"
    # trials keep no checkpoints, which would each carry the teacher's weights
    assert cfg.callbacks.model_checkpoint is None and not cfg.trainer.enable_checkpointing and not cfg.test
    baseline = train_config(["experiment=resnet18_baseline"], tmp_path)
    assert baseline.model.alpha == 0 and baseline.model.teacher_ckpt is None
