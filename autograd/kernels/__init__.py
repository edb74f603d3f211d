"""Fast kernels. The choice between fast and reference paths is made in autograd.kernels.dispatch."""
