"""The API as `uvicorn api.main:app` serves it, with the fault-suite jobs registered too:
python -m tests.reliability.serve PORT"""

from __future__ import annotations

import sys

import uvicorn

import tests.reliability.jobs  # noqa: F401  (registers the suite's jobs)
from api.main import create_app
from domain.platform.settings import get_settings

if __name__ == "__main__":
    uvicorn.run(
        create_app(get_settings()), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning"
    )
