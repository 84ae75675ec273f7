"""No value from the environment in what a run prints or saves (src/litlab/masking.py)."""

import pytest
from omegaconf import OmegaConf

from litlab.masking import environment_masked, environment_values, hide, mask, masked_container
from litlab.utils.hparams import comparable_hparams
from litlab.utils.rich_utils import print_config_tree
from tests.helpers.config import train_config

SECRET = "s3cr3t-token-8c1f"


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("LITLAB_TEST_TOKEN", SECRET)
    monkeypatch.setenv("LITLAB_TEST_SHORT", "ab")
    monkeypatch.delenv("LITLAB_TEST_UNSET", raising=False)


def test_values_from_the_environment_resolve_to_their_interpolation_while_masked(secret_env):
    cfg = OmegaConf.create(
        {
            "token": "${oc.env:LITLAB_TEST_TOKEN}",
            "url": "postgresql://me:${oc.env:LITLAB_TEST_TOKEN}@db.example/optuna",
            "copy": "${token}",
            "unset": "${oc.env:LITLAB_TEST_UNSET,'sqlite:///local.db'}",
            "root": "${oc.env:PROJECT_ROOT}/data",
            "extras": {"public_env": ["PROJECT_ROOT"]},
        }
    )
    container, read = masked_container(cfg)
    assert container["token"] == container["copy"] == "${oc.env:LITLAB_TEST_TOKEN}"
    assert container["url"] == "postgresql://me:${oc.env:LITLAB_TEST_TOKEN}@db.example/optuna"
    assert container["unset"] == "sqlite:///local.db"  # the config's default, not the environment's
    assert container["root"].endswith("/data") and "${" not in container["root"]  # public: a path
    assert read == {"LITLAB_TEST_TOKEN": SECRET}
    # the resolver is put back: the run itself gets the real value
    assert cfg.url == f"postgresql://me:{SECRET}@db.example/optuna"


def test_the_resolver_is_put_back_after_an_error(secret_env):
    with pytest.raises(RuntimeError), environment_masked():
        raise RuntimeError("while printing")
    assert OmegaConf.create({"t": "${oc.env:LITLAB_TEST_TOKEN}"}).t == SECRET


def test_public_variables_are_only_those_extras_names(secret_env):
    cfg = OmegaConf.create({"a": "${oc.env:LITLAB_TEST_TOKEN}", "extras": {"public_env": ["LITLAB_TEST_TOKEN"]}})
    assert environment_values(cfg) == {}
    assert masked_container(cfg)[0]["a"] == SECRET


def test_hide_masks_secrets_in_nested_values_and_short_ones_only_when_whole():
    secrets = {"TOKEN": SECRET, "SHORT": "ab"}
    value = {"a": [f"x{SECRET}y", ("ab", "abc")], "b": 3, "c": {"d": SECRET}}
    assert hide(value, secrets) == {
        "a": [f"x{mask('TOKEN')}y", (mask("SHORT"), "abc")],
        "b": 3,
        "c": {"d": mask("TOKEN")},
    }
    assert hide(value, {}) is value


def test_hide_masks_parts_from_six_characters_on():
    assert hide("x-abcdef-y", {"SIX": "abcdef"}) == f"x-{mask('SIX')}-y"
    assert hide("x-abcde-y", {"FIVE": "abcde"}) == "x-abcde-y"


def test_hide_masks_a_short_secret_that_equals_the_whole_value_but_is_another_string_object():
    secret = "ab"
    value = "".join(["a", "b"])  # built at run time, as a value read from a config is: not the interned literal
    assert value == secret and value is not secret
    assert hide(value, {"SHORT": secret}) == mask("SHORT")


def test_hide_masks_the_longest_secret_first_when_one_holds_another():
    # A shorter secret inside a longer one must not cut the longer one in pieces; the names' lengths run the
    # other way, so that an order by name is told apart from an order by value.
    secrets = {"A_LONG_NAME": "secret", "LONGER": "secret-and-more"}
    assert hide("x secret-and-more y", secrets) == f"x {mask('LONGER')} y"
    assert hide("x secret-and-more y", dict(reversed(secrets.items()))) == f"x {mask('LONGER')} y"


def test_printed_tree_and_config_tree_log_hold_no_secret(secret_env, tmp_path, capsys):
    cfg = train_config(
        [
            "+api_token=${oc.env:LITLAB_TEST_TOKEN}",
            "logger=mlflow",
            "logger.mlflow.tracking_uri=https://me:${oc.env:LITLAB_TEST_TOKEN}@mlflow.example",
        ],
        tmp_path,
    )
    print_config_tree(cfg, resolve=True, save_to_file=True)
    printed = capsys.readouterr().out
    saved = (tmp_path / "config_tree.log").read_text()
    for text in (printed, saved):
        assert SECRET not in text
        assert "https://me:${oc.env:LITLAB_TEST_TOKEN}@mlflow.example" in text
        assert "${oc.env:LITLAB_TEST_TOKEN}" in text.split("api_token", 1)[1]
        # the rest is resolved (a path, which the tree may wrap at the terminal's width, is not looked for)
        assert "${" not in text.replace("${oc.env:LITLAB_TEST_TOKEN}", "")
        assert "${paths." in OmegaConf.to_yaml(cfg)


def test_loggers_hyperparameters_hold_no_secret(secret_env, tmp_path):
    cfg = train_config(["model.net.activation=${oc.env:LITLAB_TEST_TOKEN}"], tmp_path)
    hparams = comparable_hparams(cfg)
    assert hparams["model/net/activation"] == "${oc.env:LITLAB_TEST_TOKEN}"
    assert SECRET not in str(hparams)
