"""The one thing pyproject.toml cannot declare stably: the optional C extension.

``daemon/banking/coda/_scan.c`` cuts CODA movement records into fields (see
``daemon/banking/coda/scan.py``). ``optional=True``: without a C compiler the install goes on and
the parser takes the regex path that gives the same results.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("daemon.banking.coda._scan", ["daemon/banking/coda/_scan.c"], optional=True)])
