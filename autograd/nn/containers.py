"""Modules that hold other modules: Sequential (run in order), ModuleList (index like a list), Identity."""

from __future__ import annotations

from .module import Module


class ModuleList(Module):
    """A list of modules whose parameters the parent sees (named "0", "1", ... as in PyTorch)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Call the submodules one after another."""

    def __init__(self, *modules: Module):
        super().__init__(modules)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class Identity(Module):
    """Return the input unchanged (a placeholder, e.g. DropPath with rate 0)."""

    def forward(self, x):
        return x
