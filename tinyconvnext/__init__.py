"""tinyconvnext: ConvNeXt (Liu et al., 2022) built on the autograd engine."""
