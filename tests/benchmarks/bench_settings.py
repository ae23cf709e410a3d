"""Benchmark-only settings: the product's, plus the bare JSON view of the GraphQL-overhead benchmark.

Never used by the product or the test suite: ``graphql_overhead.py`` starts daphne with
``DJANGO_SETTINGS_MODULE=tests.benchmarks.bench_settings``; any benchmark can, through ``--env``.
"""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.bench_urls"
