"""Optuna search through Hydra's multirun: `params` (hydra.sweeper.params as Optuna distributions), `conditional`
(define-by-run spaces), `storage`, `worker` (the ask-run-tell loop of a sweep worker), `directions`.

Reports live in litlab.reports.
"""
