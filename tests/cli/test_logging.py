import logging

from inception_v2.cli import configure_logging


def test_the_librarys_log_records_are_plain_lines_info_on_stdout_warnings_on_stderr(capsys):
    """Library modules log (never print); the CLI shows their records as they used to print them:
    progress (INFO) on stdout, notes and warnings on stderr, DEBUG not at all."""
    configure_logging()
    configure_logging()  # once: a second call adds no second handler
    logging.getLogger("inception_v2.models.weights").warning("note: %s", "classifier re-initialized")
    logging.getLogger("inception_v2.deploy.export").info("wrote %s", "x.onnx")
    logging.getLogger("inception_v2.data").debug("not shown")
    out = capsys.readouterr()
    assert out.err == "note: classifier re-initialized\n"
    assert out.out == "wrote x.onnx\n"
