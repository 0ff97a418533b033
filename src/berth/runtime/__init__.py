"""Container runtime library: OCI spec generation, the runc driver and the per-container shim.

Kept import-free on purpose: the shim process (``berth.runtime.shimd``) imports this package
and must stay small in memory.
"""
