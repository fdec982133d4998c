"""The transport: everything about talking HTTP to GitHub, and nothing about datasets.

``client`` (the request loop), ``responses`` (what an answer means), ``ratelimit`` and
``waiting`` (budgets per resource and the waits they ask for), ``pacing`` (staying under the
secondary limits), ``auth`` (the token goes only to ``api_url``), ``pagination`` (requests
and Link paging), ``quota`` (a run's own cap) and ``observer`` (how a run hears of it all).
"""
