"""Prices with tax and discounts."""

TAX_RATE = 0.2


def with_tax(amount):
    return round(amount * (1 + TAX_RATE), 2)


def discount(amount, percent):
    if not 0 <= percent <= 100:
        raise ValueError(f"bad discount {percent}")
    return amount * (100 - percent) / 100
