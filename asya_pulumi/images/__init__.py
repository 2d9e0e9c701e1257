"""Container images built here, reproducibly, without a Docker engine or a registry (docs/runtime.md).

- :mod:`~asya_pulumi.images.oci` — deterministic layers and the OCI image layout (and docker-archive) writer;
- :mod:`~asya_pulumi.images.rootfs` — Debian bases from packages (mmdebstrap), cached by their inputs;
- :mod:`~asya_pulumi.images.python_layer` — hash-locked Python distributions for a base's ``/usr/local``;
- :mod:`~asya_pulumi.images.runtime_image` / :mod:`~asya_pulumi.images.handler_images` — the runtime image and a
  pipeline's handler images; :mod:`~asya_pulumi.images.build` — what an output directory holds (SBOM, package
  lists); :mod:`~asya_pulumi.images.pin` — the spec's pinned default;
- :mod:`~asya_pulumi.images.podman` / :mod:`~asya_pulumi.images.pods` / :mod:`~asya_pulumi.images.dev_mesh` —
  running them: rendered Deployments as podman pods, ``asya dev --containers``.
"""
