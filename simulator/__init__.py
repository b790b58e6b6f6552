"""The demo fleet: prosumers' meters that sign and submit readings over HTTP, as real
meters do. Run with `python -m simulator` (see simulator/__main__.py)."""
