"""Running the scan and dedupe tasks on worker processes, or here when one will do.

Both heavy passes hand out picklable tasks that name their endpoint (never a schema object):
each worker looks the declaration up again, so a spawned worker sees what this process sees,
plugins included (``GH_COLLECT_PLUGINS`` is inherited with the environment). An endpoint
registered in this process by a direct ``register`` call is unknown to a spawned worker: such
endpoints export in this process only (small inputs, or ``ExportLimits(workers=1)``).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")


def run_tasks(function: Callable[[_T], _R], tasks: Sequence[_T], workers: int) -> list[_R]:
    """``map`` over worker processes, or in this process when one worker will do.

    Spawned, not forked: forking a process that runs pyarrow's thread pools is unsafe. If the
    workers cannot run (a script calling us without an ``if __name__ == "__main__"`` guard,
    a worker killed for memory), the work is redone here rather than failing the export.
    """
    if workers <= 1 or len(tasks) <= 1:
        return [function(task) for task in tasks]
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
            return list(pool.map(function, tasks))
    except BrokenProcessPool as exc:
        log.warning("export workers failed (%s); continuing in this process", exc)
        return [function(task) for task in tasks]
