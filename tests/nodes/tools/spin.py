"""A tool that never returns: the tool profile's time limit must stop it."""


def execute():
    while True:
        pass
