"""Classes, properties, class/static methods, a decorator with arguments, closures, dunder methods."""  # line: <module>
import functools  # line: <module>


def repeat(times):  # line: <module>
    def decorate(func):  # line: repeat
        @functools.wraps(func)  # line: repeat.<locals>.decorate
        def wrapper(*args, **kwargs):  # line: repeat.<locals>.decorate
            return [func(*args, **kwargs) for _ in range(times)]  # line: repeat.<locals>.decorate.<locals>.wrapper, repeat.<locals>.decorate.<locals>.wrapper.<locals>.<listcomp>
        return wrapper  # line: repeat.<locals>.decorate
    return decorate  # line: repeat


class Vector:  # line: <module>, Vector
    dims = 2  # line: Vector

    def __init__(self, x, y):  # line: Vector
        self.x, self.y = x, y  # line: Vector.__init__

    def __add__(self, other):  # line: Vector
        return Vector(self.x + other.x, self.y + other.y)  # line: Vector.__add__

    def __repr__(self):  # line: Vector
        return f"Vector({self.x}, {self.y})"  # line: Vector.__repr__

    @property  # line: Vector
    def norm2(self):  # line: Vector
        return self.x ** 2 + self.y ** 2  # line: Vector.norm2

    @classmethod  # line: Vector
    def zero(cls):  # line: Vector
        return cls(0, 0)  # line: Vector.zero

    @staticmethod  # line: Vector
    def parse(text):  # line: Vector
        x, y = (int(p) for p in text.split(","))  # line: Vector.parse, Vector.parse.<locals>.<genexpr>
        return Vector(x, y)  # line: Vector.parse


def make_counter():  # line: <module>
    count = 0  # line: make_counter

    def bump():  # line: make_counter
        nonlocal count
        count += 1  # line: make_counter.<locals>.bump
        return count  # line: make_counter.<locals>.bump
    return bump  # line: make_counter


@repeat(3)  # line: <module>
def greet(name):  # line: <module>
    return f"hi {name}"  # line: greet


v = Vector.parse("3,4") + Vector.zero() + Vector(1, 1)  # line: <module>
print(v, v.norm2, Vector.dims)  # line: <module>
print(greet("ada"))  # line: <module>
bump = make_counter()  # line: <module>
print([bump() for _ in range(3)])  # line: <module>, <listcomp>
print(sorted([Vector(2, 1), Vector(1, 0)], key=lambda w: w.norm2))  # line: <module>, <lambda>
