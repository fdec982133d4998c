"""A toy endpoint, declared the way a new endpoint is: one declaration, nothing else.

Imported through ``GH_COLLECT_PLUGINS=tests.toy_endpoint`` by the CLI under test (and by its
export workers), and by ``tests/test_toy_endpoint.py`` itself.
"""

from __future__ import annotations

from gh_collect import endpoints
from gh_collect.curated.columns import FETCHED_AT, ID, REPO, TIMES, col
from gh_collect.endpoints import Endpoint

TOYS = Endpoint(
    name="toys",
    path="/repos/{full_name}/toys",
    params={"state": "all"},
    columns=(ID, REPO, col("title", "str"), col("colour", "str"), *TIMES, FETCHED_AT),
)

if "toys" not in endpoints.names():
    endpoints.register(TOYS)
