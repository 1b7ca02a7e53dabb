"""The `rlmbox` command of a pip install: replaces itself (execv) with the real
rlmbox binary shipped in the wheel, so `rlmbox serve-exec`, `rlmbox serve` and
`rlmbox run` are the same program a source build makes, finding the wheel's
guest image unless RLMBOX_GUEST_DIR or --guest-dir says otherwise."""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def binary() -> str:
    """The path of the bundled rlmbox binary."""
    return os.path.join(_HERE, "_bin", "rlmbox")


def main() -> None:
    exe = binary()
    if not os.access(exe, os.X_OK):
        sys.stderr.write("rlmbox: this install has no rlmbox binary (install the wheel)\n")
        sys.exit(70)
    guest = os.path.join(_HERE, "_guest")
    if os.path.exists(os.path.join(guest, "guest.wasm")):
        os.environ.setdefault("RLMBOX_GUEST_DIR", guest)
    os.execv(exe, [exe] + sys.argv[1:])


if __name__ == "__main__":
    main()
