"""`python -m spacy skd ...`: the plugin's commands, registered through the `spacy_cli` entry point."""
import typer
from spacy.cli._util import app

skd_cli = typer.Typer(name="skd", help="spacy-skd: structural knowledge distillation commands", no_args_is_help=True)
app.add_typer(skd_cli)

from . import convert  # noqa: E402,F401  (registers its command on skd_cli)
from . import annotate  # noqa: E402,F401  (registers annotate and merge-cache on skd_cli)
from . import vectors  # noqa: E402,F401  (registers vectors on skd_cli)
from . import init_config  # noqa: E402,F401  (registers init-config on skd_cli)
from . import model_card  # noqa: E402,F401  (registers model-card on skd_cli)
from . import report  # noqa: E402,F401  (registers report, results-table, marginals and evaluate-slots)
