"""The vocabulary generated objects draw from: names, logins, labels, titles, bodies.

A data table: the generator picks from these with its seeded random stream, so editing a
tuple changes every generated org (and every fixture digest made from one).
"""

from __future__ import annotations

ADJECTIVES = (
    "amber", "brisk", "cobalt", "dusty", "eager", "fuzzy", "gentle", "hollow", "icy", "jolly",
    "keen", "lunar", "mellow", "nimble", "olive", "proud", "quiet", "rapid", "silent", "tidy",
)  # fmt: skip
NOUNS = (
    "api", "bridge", "cache", "daemon", "engine", "forge", "gateway", "hub", "index", "jobs",
    "kernel", "ledger", "mesh", "notebook", "orbit", "parser", "queue", "router", "sdk", "toolkit",
)  # fmt: skip
LOGINS = (
    "octocat", "hubot", "monalisa", "mona-dev", "defunkt", "pjhyett", "mojombo", "tpope",
    "amelia-ng", "bjorn-k", "chen-wei", "dario99", "esra-yilmaz", "farah-q", "goran-s",
    "hiro-t", "ines-m", "jules", "kwame-a", "lena-v", "mateus", "nadia-r", "oskar", "priya-d",
)  # fmt: skip
BOTS = ("dependabot[bot]", "github-actions[bot]", "renovate[bot]")
ASSOCIATIONS = ("OWNER", "MEMBER", "MEMBER", "COLLABORATOR", "CONTRIBUTOR", "NONE")
LABELS = (
    ("bug", "d73a4a", "Something isn't working"),
    ("enhancement", "a2eeef", "New feature or request"),
    ("documentation", "0075ca", "Improvements or additions to documentation"),
    ("good first issue", "7057ff", "Good for newcomers"),
    ("help wanted", "008672", "Extra attention is needed"),
    ("question", "d876e3", "Further information is requested"),
    ("dependencies", "0366d6", "Pull requests that update a dependency file"),
    ("needs: triage 🔍", "ededed", None),
)
VERBS = ("Fix", "Add", "Remove", "Refactor", "Document", "Speed up", "Handle", "Support")
THINGS = (
    "pagination", "rate limits", "retry logic", "the parser", "unicode titles", "timeouts",
    "the CLI", "config loading", "error messages", "Windows paths", "the cache", "logging",
)  # fmt: skip
UNICODE = (
    "Ünïcödé façade naïve café",
    "日本語のテキストと絵文字 🎌",
    "Привет, мир — «кавычки»",
    "مرحبا بالعالم (RTL)",
    "🚀✨🐛🔥 👍🏽 👨‍👩‍👧 🏳️‍🌈",
    "quotes \"double\" 'single' \\ backslash </script> \t tab",
    "zero\u200bwidth and line\u2028separator",
    "e\u0301 combining accents",
)
WORDS = (
    "the", "request", "fails", "when", "page", "limit", "is", "reached", "and", "we", "should",
    "retry", "after", "reset", "header", "with", "backoff", "cursor", "token", "harvest", "org",
)  # fmt: skip
# Activity (issue 14): comments, commits and releases draw from these too.
PATHS = (
    "README.md", "pyproject.toml", "src/app/__init__.py", "src/app/client.py",
    "src/app/pagination.py", "src/app/cli.py", "tests/test_client.py", "docs/index.md",
    ".github/workflows/ci.yml", "CHANGELOG.md",
)  # fmt: skip
COMMENTS = (
    "Thanks!", "+1", "LGTM 👍", "Reproduced on main.", "Closing as stale.",
    "Could you add a test for this?", "Fixed in the latest release.", "Any update on this?",
)  # fmt: skip
REVIEW_NOTES = (
    "Could this be simpler?", "nit: naming", "Should this handle None?",
    "Please add a test for this branch.", "Why not reuse the existing helper?",
    "This allocates on every call.", "```suggestion\n    return value or default\n```",
)  # fmt: skip
UNLINKED = (("Jane Doe", "jane@example.com"), ("build bot", "ci@example.org"),
            ("Łukasz Nowak", "lukasz@example.pl"))  # fmt: skip
