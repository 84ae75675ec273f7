"""What a config may instantiate: loading functions are refused by name, wherever the config names them."""

import pytest
from hydra.errors import InstantiationException
from hydra.utils import execution_whitelist, instantiate
from omegaconf import OmegaConf

from litlab.whitelist import EXECUTION_WHITELIST, ForbiddenTargetError, refuse_loading_targets


@pytest.mark.parametrize(
    ("config", "path", "target"),
    [
        ({"_target_": "torch.load"}, "_target_", "torch.load"),
        ({"callbacks": {"x": {"_target_": "pickle.loads"}}}, "callbacks.x._target_", "pickle.loads"),
        (
            {"trainer": {"callbacks": [{"_target_": "litlab.callbacks.Noop"}, {"_target_": "a.b.LoadCheckpoint"}]}},
            "trainer.callbacks[1]._target_",
            "a.b.LoadCheckpoint",
        ),
        (
            {"model": {"net": {"_target_": "litlab.models.ImageClassifier.load_from_checkpoint"}}},
            "model.net._target_",
            "litlab.models.ImageClassifier.load_from_checkpoint",
        ),
        (
            {"x": [[{"y": {"_target_": "lightning.fabric.utilities.cloud_io._load"}}]]},
            "x[0][0].y._target_",
            "lightning.fabric.utilities.cloud_io._load",
        ),
        ({"f": {"_target_": "pl_load"}}, "f._target_", "pl_load"),  # a bare name, no module
    ],
)
def test_a_loading_target_anywhere_in_the_config_is_refused_with_its_key(config, path, target):
    with pytest.raises(ForbiddenTargetError) as refused:
        refuse_loading_targets(OmegaConf.create(config))
    assert str(refused.value) == (
        f"The config key `{path}` names `{target}`, a loading function, which configs may not call (it can run a "
        "pickle's code): remove it, and pass checkpoints with ckpt_path= instead."
    )


def test_targets_read_from_yaml_and_from_overrides_are_refused(tmp_path):
    # Keys parsed at run time are new string objects, not the interned literal "_target_".
    (tmp_path / "callbacks.yaml").write_text("x:\n  _target_: torch.load\n")
    from_yaml = OmegaConf.create({"callbacks": OmegaConf.load(tmp_path / "callbacks.yaml")})
    from_overrides = OmegaConf.from_dotlist(["callbacks.x._target_=torch.load"])
    for cfg in (from_yaml, from_overrides):
        with pytest.raises(ForbiddenTargetError, match="The config key `callbacks.x._target_` names `torch.load`"):
            refuse_loading_targets(cfg)


def test_only_the_function_name_of_a_target_counts_and_only_targets_are_read():
    config = {
        # "load" in a module's name, or in values that are not targets, is no loading function.
        "collate_fn": {"_target_": "torch.utils.data.dataloader.default_collate", "_partial_": True},
        "callbacks": [{"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "dirpath": "/data/loads"}],
        "Loader": "torch.load",
        "_args_": ["torch.load"],
        "ckpt": {"A": "load", "z": "pickle.loads"},
    }
    refuse_loading_targets(OmegaConf.create(config))


def test_the_check_reads_targets_as_written_and_the_whitelist_refuses_what_an_interpolation_hides():
    # The check runs before Hydra's runtime values exist: it must not resolve them.
    cfg = OmegaConf.create(
        {
            "paths": {"output_dir": "${hydra:runtime.output_dir}"},
            "evil": "litlab.models.ImageClassifier.load_from_checkpoint",
            "x": {"_target_": "${evil}"},
        }
    )
    refuse_loading_targets(cfg)
    # A loading function behind an interpolation still fails: Hydra's whitelist checks where it is defined, and no
    # package of EXECUTION_WHITELIST defines one.
    with execution_whitelist(EXECUTION_WHITELIST), pytest.raises(InstantiationException, match="not in the Hydra"):
        instantiate(cfg.x, checkpoint_path="missing.ckpt", weights_only=False)
