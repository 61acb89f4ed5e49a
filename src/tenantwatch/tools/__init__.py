"""Operations tools built on the rules: ``scan`` (stored traces), the CI gate (``baseline`` + pytest plugin),
``report`` and ``audit``. They sit above the instrumentation and the processor (they may use both) and below
:mod:`tenantwatch.cli`, which only parses arguments and prints.
"""
