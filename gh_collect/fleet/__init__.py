"""Many workers on many machines: a Redis work queue with leases and fencing, output to an
object store through commit records created once.

``store`` (where the dataset lives: a local folder or S3), ``commits`` (immutable parts
that join the dataset through a commit record created once), ``queue`` (units in a Redis
stream, leased, fenced), ``worker`` (one process's loop over units), ``plan`` (discovery
and planning), ``output`` (export of the committed parts), ``status``.
"""
