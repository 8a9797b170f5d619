from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _sealed_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/edgegan (datasets, evaluators, reference statistics)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    mp.delenv("EDGEGAN_DATA", raising=False)
    mp.setenv("EDGEGAN_MIRROR", "http://127.0.0.1:9/")  # a closed local port: no test reaches the internet
    yield
    mp.undo()
