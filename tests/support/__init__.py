"""Helpers shared by the runtime tests: the mesh fixture's toolkit, test handlers, a TCP proxy that can cut links."""
