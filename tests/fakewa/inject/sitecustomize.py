"""Test-only start-up hook for processes that run the application against the fake server.

Put this directory on ``PYTHONPATH`` of the process under test. When ``FAKEWA_ROOT_PUB``
(hex) is set, neonize is loaded at interpreter start-up and whatsmeow's pinned Noise root
key is swapped for the fake server's, before the application's own code runs. Without the
variable nothing happens. Standard library only (apart from neonize itself), so the
directory can also be mounted into the application's container image.

Note: a ``sitecustomize`` module found earlier on the path shadows any other one.
"""

import os

if os.environ.get("FAKEWA_ROOT_PUB"):
    import neonize.client  # noqa: F401  (loads the Go library)
    from wa_root_patch import patch_wa_cert_root

    patch_wa_cert_root(bytes.fromhex(os.environ["FAKEWA_ROOT_PUB"]))
