"""The curated stage: raw JSONL to one Parquet table per endpoint (``export.py`` runs it).

``inputs`` (which raw files, checked against the checkpoint) → ``scan`` (rows, spilled by
key range) → ``dedupe`` (latest version of each key) → ``parts`` (Parquet files) →
``publish`` (swapped in atomically). ``columns`` and ``schemas`` say what a row holds.
"""
