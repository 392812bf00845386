"""Stock kept in a dict; restocking runs on worker threads."""

import threading

from . import pricing

_lock = threading.Lock()
STOCK = {"apple": 3, "pear": 0, "fig": 12}
PRICES = {"apple": 0.5, "pear": 0.75, "fig": 1.25}


def in_stock():
    for item, count in STOCK.items():
        if count > 0:
            yield item, count


def restock(item, count):
    with _lock:
        STOCK[item] = STOCK.get(item, 0) + count


def restock_all(items, count):
    workers = [threading.Thread(target=restock, args=(item, count)) for item in items]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def order_total(item, quantity, percent=0):
    price = pricing.discount(PRICES[item] * quantity, percent)
    return pricing.with_tax(price)
