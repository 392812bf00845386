"""Line-heavy workload: long loops in one frame, few calls."""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
total = 0
i = 0
while i < n:
    total += i
    if total % 7 == 3:
        total -= 1
    i += 1
print(total)
