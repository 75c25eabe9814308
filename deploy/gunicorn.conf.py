"""gunicorn settings for the web role: `gunicorn -c deploy/gunicorn.conf.py`.

The settings live in the package (cli/gunicorn_conf.py) so installed copies have them
and `outage web` uses the same ones; this file only re-exports them. Tune through the
OUTAGE_* variables (OUTAGE_WEB_WORKERS, OUTAGE_LOG_JSON, ...) or
gunicorn's own command-line options, which override this file.
"""

from cli.gunicorn_conf import *  # noqa: F403 (gunicorn reads settings from module globals)
