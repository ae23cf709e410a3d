"""Benchmark-only settings: the product's, plus the bare JSON view of the GraphQL-overhead benchmark.

Never used by the product or the test suite: ``graphql_overhead.py`` starts daphne with
``DJANGO_SETTINGS_MODULE=tests.benchmarks.bench_settings``; any benchmark can, through ``--env``.
"""

import os

from project.settings import *  # noqa: F403
from project.settings import DATABASES

ROOT_URLCONF = "tests.benchmarks.bench_urls"

# Experiments without touching the product's settings: BENCH_CONN_MAX_AGE=60 keeps database
# connections open across requests and jobs (throughput.py --env DJANGO_SETTINGS_MODULE=...).
if "BENCH_CONN_MAX_AGE" in os.environ:
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ["BENCH_CONN_MAX_AGE"])
