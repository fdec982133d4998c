"""What a run tells people: live ``progress``, ``status`` from the checkpoint, the
``manifest`` a finished run leaves for the next program in line, and the year's HTML report
(``yearly``: ``tables`` -> ``figures`` -> ``page`` with ``svg`` charts)."""
