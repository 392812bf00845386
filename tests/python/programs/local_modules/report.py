# A script next to modules named like standard-library ones: as with any import, the
# script's directory comes first on sys.path, so its own modules are the ones imported.
import signal  # line: <module>
import types  # line: <module>

print(types.describe())  # line: <module>
print(signal.describe())  # line: <module>
