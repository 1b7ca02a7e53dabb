"""A tool for the tests: adds two numbers (uses the math module)."""
import math


def execute(a, b):
    return {"sum": a + b, "root": math.sqrt(a + b)}
