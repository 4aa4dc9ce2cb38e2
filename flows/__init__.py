"""howto flows package."""

import logging as _logging

# Prefect's logging config leaves the root logger at WARNING, which would hide our modules' progress lines
# (training epochs, weights, clients): our packages log at INFO, through Prefect's handlers, in the CLI and
# in deployments alike (`howto -v` lowers them to DEBUG).
for _name in ("tasks", "models", "storage", "flows"):
    if _logging.getLogger(_name).level == _logging.NOTSET:
        _logging.getLogger(_name).setLevel(_logging.INFO)
