"""Sharing with peers: indicators as STIX 2.1 bundles (``stix``)."""
