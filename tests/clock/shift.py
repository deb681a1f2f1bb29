"""Seconds from now to the UTC time given as the argument: `make test-at` moves every test
process's clock by that much (sitecustomize.py beside this file)."""

import sys
from datetime import UTC, datetime

try:
    moment = datetime.fromisoformat(sys.argv[1]).replace(tzinfo=UTC)
except (IndexError, ValueError):
    sys.exit("make test-at needs WHEN='YYYY-MM-DD HH:MM:SS', a time in UTC")
print(round(moment.timestamp() - datetime.now(UTC).timestamp()))
