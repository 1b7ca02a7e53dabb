"""A tool that allocates `mb` MiB: the tool profile's memory limit must stop it."""


def execute(mb):
    return len(bytearray(mb * 1024 * 1024))
