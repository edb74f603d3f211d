"""Install the two packages of tinyconvnext: ``autograd`` (the engine) and ``tinyconvnext`` (the model).

pip install -e ".[test]"     # with the test dependencies (pytest, hypothesis, torch for parity tests)
"""

from setuptools import find_packages, setup

setup(
    name="tinyconvnext",
    version="0.1.0",
    description="ConvNeXt from scratch on a small NumPy/CuPy reverse-mode autograd engine",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["autograd", "autograd.*", "tinyconvnext", "tinyconvnext.*"]),
    package_data={"tinyconvnext": ["*.txt", "*.json", "*.tsv"]},
    install_requires=[
        "numpy>=1.24",
        "numba>=0.59",  # the fused CPU kernels (depthwise conv, layer norm, GELU, ...); see README
        "tqdm>=4.60",
        "pillow>=9.0",
        "matplotlib>=3.5",  # training curves and the lessons' figures (PNG)
        "safetensors>=0.4",  # weight files (ours and timm's), read with its NumPy API: no PyTorch needed
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "hypothesis>=6.80",
            "torch==2.13.0",
            "threadpoolctl>=3",
            "ruff==0.17.6",
            "pytest-xdist>=3",
        ],
        "cuda": ["cupy-cuda12x>=13"],
    },
)
