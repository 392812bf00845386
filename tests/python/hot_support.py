"""The ``hot`` module of the cost tests: a loop and a run of tiny calls in a module of their
own, so that a test can skip it with a filter (tests/python/test_backends.py) or count what
its calls and lines cost (tests/python/test_evidence_only.py). ``many_calls(n)`` makes ``n``
calls of ``tiny``; ``spin(n)`` runs ``3 * n`` loop-body lines in one frame."""

HOT_PY = '''\
def spin(n):
    total = 0
    for i in range(n):
        total += i
        total -= i // 2
    return total


def tiny(i):
    return i


def many_calls(n):
    for i in range(n):
        tiny(i)
'''
