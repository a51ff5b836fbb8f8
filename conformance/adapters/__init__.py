"""Device adapters: one interface (``base``), many ways to reach a device under test;
``conformance.select_adapter`` reads the ``--device`` text."""
