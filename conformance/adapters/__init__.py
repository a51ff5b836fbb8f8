"""Device adapters: one interface (``base``), many ways to reach a device under test;
``choose.parse_adapter`` reads the ``--device`` text."""
