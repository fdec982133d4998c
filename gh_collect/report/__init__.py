"""What a run tells people: live ``progress``, ``status`` from the checkpoint, and the
``manifest`` a finished run leaves for the next program in line."""
