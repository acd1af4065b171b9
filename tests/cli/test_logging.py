import logging

from inception_v2.cli import configure_logging


def test_the_librarys_log_records_reach_stderr_as_plain_lines(capsys):
    """Library modules log (never print); the CLI shows their records as they used to print them."""
    configure_logging()
    configure_logging()  # once: a second call adds no second handler
    logging.getLogger("inception_v2.models.weights").warning("note: %s", "classifier re-initialized")
    logging.getLogger("inception_v2.deploy.export").info("wrote %s", "x.onnx")
    logging.getLogger("inception_v2.data").debug("not shown")
    assert capsys.readouterr().err == "note: classifier re-initialized\nwrote x.onnx\n"
