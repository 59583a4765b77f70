"""Madoguchi's selective forwarding unit on aiortc."""
