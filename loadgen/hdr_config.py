"""The HDR histogram settings, in one place for the locustfile (which records) and bench/run/hdr.py
(which reads and merges): stdlib only, so it loads in the Locust image and in the runner alike.

Values are integer microseconds, 1 µs .. 1 h, 3 significant digits: below 2.048 ms every
microsecond has its own bucket, above that the relative error stays under 0.1 %. Histograms
merge and decode only with the same settings, so both sides must build them from these.

The locustfile imports this as the top-level module `hdr_config` (Locust puts the locustfile's
folder on sys.path while it loads it; the image copies loadgen/*.py to /loadgen/), the runner as
`loadgen.hdr_config`.
"""

from __future__ import annotations

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: a request slower than that is a failure anyway
SIGNIFICANT_DIGITS = 3
