"""Neural-network layers and functions (the ops ConvNeXt needs live in autograd.nn.functional)."""
