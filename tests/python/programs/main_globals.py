"""Prints the names in the __main__ namespace, in their order, before defining anything."""  # line: <module>
print(list(globals()))  # line: <module>
