"""Helper module imported by the package's entry points."""  # line: <module>
import math  # line: <module>


class Circle:  # line: <module>, Circle
    def __init__(self, r):  # line: Circle
        self.r = r  # line: Circle.__init__

    def area(self):  # line: Circle
        return round(math.pi * self.r ** 2, 3)  # line: Circle.area
