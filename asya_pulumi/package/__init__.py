"""Serving the components as a Pulumi package to other languages (TypeScript, Go, YAML).

- :mod:`~asya_pulumi.package.schema` — the package schema's types, generated from the pydantic spec models;
- :mod:`~asya_pulumi.package.provider` — the component provider that ``components/__main__.py`` runs.
"""
