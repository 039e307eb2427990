"""spacy-skd: structural knowledge distillation for spaCy pipelines.

Importing the package is cheap: components, architectures and readers register through the
entry points in setup.cfg and are imported by spaCy's registry on first use.
"""

__version__ = "0.1.0"
