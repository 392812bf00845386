"""`python -m shop`: print a stock report."""

from shop.report import main

main()
