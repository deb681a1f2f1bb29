"""The clock of every Python process of a moved test run (`make test-at`): with
MLOPS_TEST_CLOCK_SHIFT set, this folder is on PYTHONPATH, and each process (pytest, `mlops`,
inference servers, training steps) starts its clock that many seconds from the machine's and
lets it run on, so they all agree on one moved time. time-machine moves the wall clock only:
sleeps, timeouts and monotonic clocks keep the machine's."""

import os

_SHIFT = os.environ.get("MLOPS_TEST_CLOCK_SHIFT")
if _SHIFT:
    import time

    import time_machine

    # a timestamp, not a datetime: time-machine then leaves the process's zone alone
    time_machine.travel(time.time() + float(_SHIFT), tick=True).start()
