"""The minting process: `python -m scheduler`. The only holder of the mint authority key."""
