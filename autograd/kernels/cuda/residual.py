"""The fused residual end of a block on the GPU: the references' CuPy expressions serve.

``autograd.kernels.cpu.residual`` explains the op. On the GPU its three multiplies and one add are cheap
element-wise kernels that CuPy launches from the reference's array expressions, so no CUDA source is kept
for it here; the functions have the CPU kernels' names, as ``dispatch`` expects.
"""

from ..cpu.residual import scaled_residual_backward_reference as scaled_residual_backward  # noqa: F401
from ..cpu.residual import scaled_residual_forward_reference as scaled_residual_forward  # noqa: F401
