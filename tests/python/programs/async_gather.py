"""asyncio.run with gather, create_task, a queue between producer and consumer, a timeout."""  # line: <module>
import asyncio  # line: <module>


async def fetch(name, delay_steps):  # line: <module>
    for _ in range(delay_steps):  # line: fetch
        await asyncio.sleep(0)  # line: fetch
    return f"{name}:{delay_steps}"  # line: fetch


async def producer(queue, n):  # line: <module>
    for i in range(n):  # line: producer
        await queue.put(i)  # line: producer
    await queue.put(None)  # line: producer


async def consumer(queue):  # line: <module>
    seen = []  # line: consumer
    while True:  # line: consumer
        item = await queue.get()  # line: consumer
        if item is None:  # line: consumer
            return seen  # line: consumer
        seen.append(item * 10)  # line: consumer


async def never_finishes():  # line: <module>
    await asyncio.sleep(3600)  # line: never_finishes


async def main():  # line: <module>
    results = await asyncio.gather(fetch("a", 3), fetch("b", 1), fetch("c", 2))  # line: main
    print("gathered", results)  # line: main
    queue = asyncio.Queue(maxsize=2)  # line: main
    prod = asyncio.create_task(producer(queue, 5))  # line: main
    cons = asyncio.create_task(consumer(queue))  # line: main
    await prod  # line: main
    print("consumed", await cons)  # line: main
    try:  # line: main
        await asyncio.wait_for(never_finishes(), timeout=0.01)  # line: main
    except asyncio.TimeoutError:  # line: main
        print("timed out")  # line: main
    return len(results)  # line: main


print("result", asyncio.run(main()))  # line: <module>
