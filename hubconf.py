"""torch.hub entry points: one per registered model.

    model = torch.hub.load("OWNER/inception-v2", "inception_v2", num_classes=20)
    model = torch.hub.load("path/to/inception-v2", "googlenet_bn", source="local", pretrained=True)
    model = torch.hub.load("OWNER/inception-v2", "inception_v3", aux_logits=True)  # + aux head

Each entry takes the keyword arguments of ``inception_v2.create_model`` (``num_classes``, 0 for
pooled features; ``in_chans``, ``pretrained``, ``features_only``, ``aux_logits`` (the auxiliary
heads are off unless asked for), ``global_pool``, ``drop_rate``, the model's own options);
``torch.hub.help`` prints the model's docstring.
"""

import os
import sys

dependencies = ["torch", "torchvision"]

# The package lives in src/; a hub checkout is not installed, so put its src/ first.
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
if os.path.isdir(_SRC) and _SRC not in sys.path:
    sys.path.insert(0, _SRC)

from inception_v2.models import create_model, list_models  # noqa: E402  (after the path set-up)
from inception_v2.models.registry import _MODELS  # noqa: E402


def _entry(name):
    def entry(**kwargs):
        return create_model(name, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    doc = (_MODELS[name].__doc__ or name).strip()
    entry.__doc__ = doc + "\n\nKeyword arguments: those of inception_v2.create_model."
    return entry


for _name in list_models():
    globals()[_name] = _entry(_name)
