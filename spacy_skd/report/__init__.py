"""Reports of the experiments: test scores that `spacy evaluate` wrote under metrics/, read into
tables, ASO significance, the papers' figures beside ours, plots, and the teacher-marginals
analysis. Sits above training and the teacher layer; only `cli/` imports it."""
