"""Optuna search through Hydra's multirun: the live trial, search spaces and sweep reports."""
