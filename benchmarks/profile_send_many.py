"""cProfile of one 200,000-record send_many (the workload of ab.py).

Run:  PYTHONPATH=TREE python benchmarks/profile_send_many.py   (from TREE)
"""

import cProfile
import pstats
import tempfile

from minikafka import Broker, Producer

n = 200000
keys = [b"k%015d" % i for i in range(n)]
values = [bytes([65 + i % 26]) * 100 for i in range(1024)]
values = [values[i % 1024] for i in range(n)]
with tempfile.TemporaryDirectory() as d, Broker(d) as b:
    b.create_topic("t")
    with Producer(b) as p:
        pr = cProfile.Profile()
        pr.enable()
        p.send_many("t", values, keys)
        pr.disable()
pstats.Stats(pr).sort_stats("tottime").print_stats(8)
