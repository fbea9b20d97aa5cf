"""Desk as code: a tenant's routing profiles, queues and agents declared in a YAML file and applied through the
configuration handlers (``switchboard desk apply``), and a tenant with its first admin key created from the
command line (``switchboard tenant create``). docs/desk-as-code.md describes the file and the commands.

``desk_file`` (the file → the desired desk) and ``plan`` (desired vs stored → what to change) are pure;
``store`` reads and writes; ``cli`` parses arguments and prints."""
