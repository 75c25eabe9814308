"""Exit 0 when a URL answers 2xx within 2 seconds (a container HEALTHCHECK without curl).

usage: python http_ok.py URL
"""

import sys
import urllib.request


def main(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 0 if 200 <= resp.status < 300 else 1
    except Exception:  # any failure to answer is "unhealthy"
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/healthz"))
