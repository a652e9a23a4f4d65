"""Embedding networks: backbones, GeM pooling, the descriptor network and learned whitening.

Import the submodules directly (``darkside.embed.network``, ``darkside.embed.whitening``...):
this package file stays import-light so that numpy-only users (whitening) do not pay for torch.
"""
