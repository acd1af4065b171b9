"""The markers of timm's model tests (``test_timm_models.py``), so pytest knows them."""

TIMM_MARKERS = ("base", "forward", "backward", "cfg", "torchscript", "features", "fxforward", "fxbackward")


def pytest_configure(config):
    for marker in TIMM_MARKERS:
        config.addinivalue_line("markers", f"{marker}: a group of timm's model tests (test_timm_models.py)")
