"""The ``targetfuse`` command: one entry point above everything it dispatches to.

It imports the services and the research tooling only to run them, and only what is
installed: a service image has its own service command and need not carry this one; nothing
in the project imports it.
"""
