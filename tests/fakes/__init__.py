"""Fakes of the cloud APIs that have no emulator (named as fakes), and stand-ins shared by
several test packages."""
