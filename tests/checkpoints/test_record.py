"""What every checkpoint records so that it alone rebuilds the run (litlab.checkpoints.record)."""

from types import SimpleNamespace

import pytest

from litlab.checkpoints.record import hide_environment, offline_net_spec
from litlab.masking import mask
from litlab.run_record import RunRecorder

RESNET = "litlab.models.nets.ResNet"


@pytest.mark.parametrize(
    ("given", "pinned"),
    [
        ({"weights": "IMAGENET1K_V1"}, {"stem": "imagenet", "imagenet_input": True}),
        ({"weights": None}, {"stem": "cifar", "imagenet_input": False}),
        # an explicit stem is kept whatever the weights implied
        ({"weights": None, "stem": "imagenet"}, {"stem": "imagenet", "imagenet_input": False}),
        (
            {"weights": "IMAGENET1K_V1", "stem": "cifar", "imagenet_input": False},
            {"stem": "cifar", "imagenet_input": False},
        ),
    ],
)
def test_the_offline_spec_pins_what_the_weights_implied_and_drops_them(given, pinned):
    spec = {"_target_": RESNET, "arch": "resnet18", **given}
    assert offline_net_spec(spec) == {**spec, **pinned, "weights": None}
    assert spec["weights"] == given["weights"]  # the caller's spec is left as it was


def test_a_stem_read_from_a_file_is_resolved_like_a_literal_one():
    """Strings read back from a checkpoint are new objects, not the interned literal: compared by value."""
    auto = "".join(["au", "to"])
    assert offline_net_spec({"_target_": RESNET, "stem": auto, "weights": None})["stem"] == "cifar"


def test_other_networks_are_left_untouched():
    spec = {"_target_": "torchvision.models.resnet18", "weights": "IMAGENET1K_V1"}
    assert offline_net_spec(spec) == spec


def test_a_checkpoint_hides_the_runs_values_from_the_environment_in_both_hyperparameter_sets():
    recorder = RunRecorder.__new__(RunRecorder)  # what its __init__ reads from the config: the secrets alone
    recorder.secrets = {"TOKEN": "tok-0123456789"}
    trainer = SimpleNamespace(callbacks=[object(), recorder])
    checkpoint = {
        "state_dict": {"w": "tok-0123456789"},  # weights are no text: left alone
        "hyper_parameters": {"tracking_uri": "https://me:tok-0123456789@mlflow.example"},
        "datamodule_hyper_parameters": {"data_dir": "tok-0123456789"},
    }
    hide_environment(checkpoint, trainer)
    assert checkpoint == {
        "state_dict": {"w": "tok-0123456789"},
        "hyper_parameters": {"tracking_uri": f"https://me:{mask('TOKEN')}@mlflow.example"},
        "datamodule_hyper_parameters": {"data_dir": mask("TOKEN")},
    }
    without_datamodule = {"hyper_parameters": {"a": "tok-0123456789"}}
    hide_environment(without_datamodule, trainer)
    assert without_datamodule == {"hyper_parameters": {"a": mask("TOKEN")}}
    untouched = {"hyper_parameters": {"a": "tok-0123456789"}}
    hide_environment(untouched, SimpleNamespace(callbacks=[]))  # a Trainer without a recorder: nothing to hide
    assert untouched == {"hyper_parameters": {"a": "tok-0123456789"}}
