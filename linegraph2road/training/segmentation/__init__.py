"""Training a segmentation-only front-end with its own paper's recipe (``task: segmentation``).

:mod:`.config` (the config schema), :mod:`.common` (front-end building, validation, the run
folder), and one module per recipe: :mod:`.nl_linknet` (paper 000), :mod:`.fctl` (paper 001,
with its refinement network), :mod:`.experts` (paper 003). The LineGraph2Road trainer (front-end
+ topology head) is :mod:`linegraph2road.training.trainer`.
"""
