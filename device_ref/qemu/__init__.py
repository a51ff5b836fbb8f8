"""QEMU driven from the host: gdbstub client, register bus, machine launcher."""
