"""The harvest: a collect run and its stages.

``run`` sequences them: ``discovery`` (the repo ``listing``, page by page), then one of
``phases`` per endpoint (every unit, page by page); every list is read by the one ``walk``.
``plan`` is the dry run, ``context`` what the stages share, ``observer`` the run's side of
each request.
"""
