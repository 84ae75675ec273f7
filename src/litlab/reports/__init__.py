"""Reports that read what runs leave behind and turn it into tables and figures.

`study` tabulates a sweep of classifier runs (the MLP-versus-CNN study), `sweep` writes an Optuna sweep's
results and parameter importances, `distillation` puts teachers and students side by side, `samplers`
compares samplers on one search, and `seeds` gives every test metric of a multi-seed sweep as mean,
standard deviation and each seed's value. The scripts in scripts/ are thin command lines over these modules.
"""
