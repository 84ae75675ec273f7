"""Optuna search through Hydra's multirun: sweep workers, search space, storages, conditional spaces.

Reports live in litlab.reports.
"""
