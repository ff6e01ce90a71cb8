"""The chapters' experiments: what each notebook runs, kept out of the notebooks so they stay short and narrated.

One module per chapter (e.g. :mod:`esclib.experiments.pann_transfer` for chapter 01, study 003): data splits,
training runs recorded in the results store (finished settings are skipped), tables and figures. Import the
module a chapter needs; this package imports nothing itself.
"""
