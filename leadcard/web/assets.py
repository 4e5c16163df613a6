"""Vendored front-end assets and their Subresource Integrity hashes.

``static/vendor/b24jssdk-2.2.0.min.js`` is ``dist/umd/index.min.js`` from the
npm tarball of ``@bitrix24/b24jssdk@2.2.0`` (global ``B24Js``), copied by
``scripts/vendor_js.sh``, minus its last line ``//# sourceMappingURL=index.min.js.map``
(the map is not vendored, so DevTools would log a 404 for it inside every card). The hash
below is checked by
``tests/unit/test_assets.py`` and emitted as ``integrity=`` on the script tag. Browsers check
it against the decoded bytes, so ``static_files`` may send the file brotli- or gzip-encoded.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

B24JSSDK_VERSION = "2.2.0"
B24JSSDK_FILE = f"vendor/b24jssdk-{B24JSSDK_VERSION}.min.js"  # relative to static/
B24JSSDK_INTEGRITY = "sha384-/Q8i5+LfLXFp2Cx+rORJzFuM4iH9TRpNd5C0MXKayiz+zeeoTdZbPhlS10b830O6"


def sri_sha384(path: Path) -> str:
    """``sha384-<base64>`` of a file, as browsers compute it for ``integrity=``."""
    digest = hashlib.sha384(path.read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")
