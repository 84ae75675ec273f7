"""Optuna search through Hydra's multirun: the live trial and conditional search spaces (reports: litlab.reports)."""
