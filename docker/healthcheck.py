"""Container health check: exit 0 when the service answers 200 on ``/v2/health/ready``, else 1.

Standard library only (the image has no curl). Asks the port the service listens on
(``SERVICE_PORT``, default 8000) on the loopback interface.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('SERVICE_PORT', '8000')}/v2/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
