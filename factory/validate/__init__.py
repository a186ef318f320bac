"""Validation of built binaries: ELF and ISA audits, QEMU smoke runs, the report and the gate
before packing."""
