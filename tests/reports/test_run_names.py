"""Runs are named by the overrides that differ between them, whatever each run was given."""

from litlab.reports.seeds import run_names


def test_runs_are_named_by_what_differs_and_a_run_on_the_defaults_is_named_so():
    overrides = [
        {},
        {"experiment": "mnist_cnn", "trainer.max_epochs": "5"},
        {"experiment": "cgan_mnist", "seed": "1"},
    ]
    assert run_names(overrides, ignore=["seed"]) == ["defaults", "mnist_cnn, trainer.max_epochs=5", "cgan_mnist"]


def test_runs_that_differ_only_by_an_ignored_key_have_no_name_of_their_own():
    overrides = [{"experiment": "x", "seed": "1"}, {"experiment": "x", "seed": "2"}]
    assert run_names(overrides, ignore=["seed"]) == ["", ""]
    assert run_names([{"lr": "0.1"}, {"lr": "0.01"}]) == ["lr=0.1", "lr=0.01"]


def test_only_the_experiment_is_named_bare_whatever_sorts_before_it():
    overrides = [{"data.batch_size": "32", "experiment": "a"}, {"data.batch_size": "64", "experiment": "b"}]
    assert run_names(overrides) == ["data.batch_size=32, a", "data.batch_size=64, b"]
