"""Warnings from __main__: DeprecationWarning is shown for __main__ code, once per location."""  # line: <module>
import warnings  # line: <module>


def old_api(x):  # line: <module>
    warnings.warn("old_api is deprecated; use new_api", DeprecationWarning, stacklevel=2)  # line: old_api
    return x * 2  # line: old_api


def noisy():  # line: <module>
    for i in range(3):  # line: noisy
        warnings.warn(f"noisy call {i}")  # line: noisy
    warnings.warn("same text, same place")  # line: noisy


print(old_api(21))  # line: <module>
noisy()  # line: <module>
noisy()  # line: <module>
with warnings.catch_warnings(record=True) as caught:  # line: <module>
    warnings.simplefilter("always")  # line: <module>
    old_api(1)  # line: <module>
print("caught", [str(w.message) for w in caught], [w.filename == __file__ for w in caught])  # line: <module>, <listcomp>
