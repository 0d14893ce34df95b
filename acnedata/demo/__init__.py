"""Offline demo: synthetic skin images, a local mirror of the public APIs, a spec for it."""
