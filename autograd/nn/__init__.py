"""Neural-network building blocks. ``autograd.nn.functional`` holds the ops (as ``torch.nn.functional``)."""

from . import functional  # noqa: F401
