"""A tool that imports os: refused where the tool profile's allowlist binds."""
import os


def execute():
    return os.sep
