"""Importing rnnlab stays light and offline: it never imports torch and opens no connection."""

import subprocess
import sys

_CODE = """
import socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("network access during import")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import rnnlab, rnnlab.interop.torch, rnnlab.interop.flax, rnnlab.flax_module, rnnlab.data, rnnlab.language_model
import rnnlab.checkpoint, rnnlab.distributed, rnnlab.sweep, rnnlab.config
print("torch" in sys.modules)
"""


def test_import_rnnlab_needs_neither_torch_nor_the_network():
    out = subprocess.run([sys.executable, "-c", _CODE], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", out
