"""What makes the dataset durable and exactly-once: files that survive any crash.

``atomic`` (whole-file replace), ``storage`` (append-only raw files cut back on resume),
``envelope`` (the raw line format), ``validators`` (ETags kept with the data they vouch
for), ``paths`` (where each file lives), ``lock`` (one writer per dataset) and
``checkpoint/`` (the progress state).
"""
