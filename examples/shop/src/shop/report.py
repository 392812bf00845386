"""The stock report."""

import sys

from . import inventory


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    inventory.restock_all(["pear", "kiwi"], int(argv[0]) if argv else 5)
    for item, count in inventory.in_stock():
        print(f"{item:6} {count:3}")
    print("total for 4 figs at 10% off:", inventory.order_total("fig", 4, percent=10))
    try:
        inventory.order_total("apple", 1, percent=120)
    except ValueError as exc:
        print("rejected:", exc)
