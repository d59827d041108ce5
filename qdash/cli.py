"""The ``qdash`` command line."""

import argparse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="qdash")
    parser.parse_args(argv)
    return 0
