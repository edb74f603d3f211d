"""Writes timm_convnext_names.json: the parameter names and shapes of a few timm ConvNeXt models, so that
the name table (tinyconvnext/weight_names.py) is checked against real timm names where timm is not installed.

    python tests/model/make_timm_names.py      # in an environment that has timm (not the project's venv)
"""

import json
from pathlib import Path

import timm

MODELS = ("convnext_atto", "convnext_atto_ols", "convnext_femto_ols", "convnext_nano_ols", "convnext_tiny")


def main():
    table = {"timm_version": timm.__version__, "models": {}}
    for name in MODELS:
        state = timm.create_model(name, pretrained=False).state_dict()
        table["models"][name] = {key: list(value.shape) for key, value in state.items()}
    path = Path(__file__).with_name("timm_convnext_names.json")
    path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
