"""The simulated organization: deterministic repos, pull requests and issues from a seed.

Everything here is generated once, up front, so that serving a page is slicing a precomputed
list and joining precomputed JSON bytes. Objects follow the shapes of GitHub's recorded
responses (minimal-repository, pull-request-simple, issue-items) because the harvester must be
tested against what GitHub really sends, including ghost users (``user: null``), long unicode
bodies and pull requests inside the issues list.

Two tricks keep big orgs cheap:

* Shared sub-objects (users, repos embedded in ``head``/``base``, labels, milestones) are
  serialised once and referenced by every object that embeds them (``shapes._Encoder``).
* API URLs inside objects are written with ``API_PLACEHOLDER``; the server swaps in the base
  URL the request used, so objects point at the simulator (never at the real GitHub) whatever
  port it got.

Where things live: ``records`` (Item, RepoData, constants, time helpers), ``org`` (OrgModel:
lookups and mutations), ``generation`` (the seeded generator), ``shapes`` (GitHub's JSON
shapes), ``words`` (the vocabulary table), ``truth`` (ground truth and the repo filter),
``cursors`` (cursor pagination keys), ``details`` (per-item detail answers, on request).
A repo's activity (issue and review comments, commits, releases) is drawn per repo on first
use: ``activity`` (``RepoActivity``), ``entries`` (its records and sorted lists),
``activity_draw`` (what a repo has, and when), ``activity_render`` (the rest of each object)
and ``activity_shapes`` (GitHub's JSON shapes for it).
"""

from __future__ import annotations

from gh_collect.simulator.model.activity import RepoActivity
from gh_collect.simulator.model.cursors import (
    decode_cursor,
    encode_cursor,
    position_after,
    position_before,
)
from gh_collect.simulator.model.entries import KINDS, Entry
from gh_collect.simulator.model.org import OrgModel
from gh_collect.simulator.model.records import (
    API_PLACEHOLDER,
    API_PLACEHOLDER_BYTES,
    DATA_START,
    DEFAULT_ENDPOINTS,
    ENDPOINTS,
    MIN_REPOS_FOR_SCENARIOS,
    RENAMED_TO,
    SCENARIO_REPOS,
    SORT_KEYS,
    WEB,
    Item,
    RepoData,
    Selection,
    SortKey,
    iso,
    parse_time,
    year_start,
)
from gh_collect.simulator.model.shapes import org_simple
from gh_collect.simulator.model.truth import ground_truth, select_repos

__all__ = [
    "API_PLACEHOLDER",
    "API_PLACEHOLDER_BYTES",
    "DATA_START",
    "DEFAULT_ENDPOINTS",
    "ENDPOINTS",
    "KINDS",
    "MIN_REPOS_FOR_SCENARIOS",
    "RENAMED_TO",
    "SCENARIO_REPOS",
    "SORT_KEYS",
    "WEB",
    "Entry",
    "Item",
    "OrgModel",
    "RepoActivity",
    "RepoData",
    "Selection",
    "SortKey",
    "decode_cursor",
    "encode_cursor",
    "ground_truth",
    "iso",
    "org_simple",
    "parse_time",
    "position_after",
    "position_before",
    "select_repos",
    "year_start",
]
