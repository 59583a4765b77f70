"""Madoguchi's server: pages, REST API and signaling on one aiohttp app."""
