"""Writes the whisper trees used by charcoal-web's differential suite and by
benches/render-vs-graphite-web.sh, with the reference whisper library (whisper 1.1.10), so the
files do not depend on Charcoal's own store.

usage: python gw_fixture.py ROOT NOW interop|bench

ROOT gets a whisper/ directory (Carbon layout, tagged series under _tagged/). NOW (Unix seconds)
is the clock every point is written against; the tests then query both servers with now=NOW.
Prints the tagged series names, one per line, for registration with graphite-web's tag DB.
"""
import hashlib
import os
import sys

import whisper


def path_for(root, name):
    if ';' in name:
        h = hashlib.sha256(name.encode('utf8')).hexdigest()
        return os.path.join(root, '_tagged', h[0:3], h[3:6], name.replace('.', '_DOT_') + '.wsp')
    return os.path.join(root, *name.split('.')) + '.wsp'


def write(root, name, archives, points, now):
    path = path_for(root, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.remove(path)
    whisper.create(path, archives, xFilesFactor=0.5, aggregationMethod='average')
    # update_many takes newest first is not required; chunk to keep memory small.
    for i in range(0, len(points), 5000):
        whisper.update_many(path, points[i:i + 5000], now=now)


def interop(root, now):
    minute_archives = [(60, 2 * 1440), (300, 30 * 288)]
    for h in range(1, 5):
        for m, metric in enumerate(['user', 'system', 'idle']):
            pts = []
            for k in range(3 * 1440):
                if (k + h * 3 + m) % 17 == 0:
                    continue  # a gap
                value = ((k * 37 + h * 11 + m * 7) % 100) / 3.0 + h
                pts.append((now - k * 60, value))
            write(root, 'test.web%d.cpu.%s' % (h, metric), minute_archives, pts, now)
    for h in (1, 2):
        pts = [(now - k * 10, (k % 13) * 1.5 + h) for k in range(8640) if k % 29 != 5]
        write(root, 'test.db%d.cpu.user' % h, [(10, 8640)], pts, now)
    # A counter with a reset half an hour ago; no gaps (graphite-web 1.1.10's
    # nonNegativeDerivative(maxValue) fails on None).
    pts, total = [], 0
    for k in reversed(range(2 * 1440)):
        total = 0 if k == 30 else total + (k % 11) * 100 + 7
        pts.append((now - k * 60, float(total)))
    write(root, 'test.web1.net.bytes_in', minute_archives, pts, now)
    pts = [(now - k * 60, (k % 9) - 4.5) for k in range(2 * 1440)]
    write(root, 'test.neg.value', minute_archives, pts, now)
    pts = [(now - k * 60, float(k % 23)) for k in range(2 * 1440) if k % 5 == 0]
    write(root, 'test.sparse.m', minute_archives, pts, now)
    tagged = ['disk.used;dc=east;host=web1', 'disk.used;dc=east;host=db1',
              'disk.used;dc=west;host=web2', 'disk.free;dc=west;host=web2']
    for i, name in enumerate(tagged):
        pts = [(now - k * 60, float((k * (i + 3)) % 50)) for k in range(1440)]
        write(root, name, [(60, 2 * 1440)], pts, now)
    return tagged


def bench(root, now):
    # 100 series x 7 days at 1-minute resolution (8 days kept so a 7-day query stays at 60 s).
    for i in range(100):
        pts = [(now - k * 60, float((k * 7 + i) % 1000)) for k in range(8 * 1440)]
        write(root, 'bench.host%03d.value' % i, [(60, 8 * 1440)], pts, now)
    return []


def main():
    root, now, profile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    root = os.path.join(root, 'whisper')
    os.makedirs(root, exist_ok=True)
    tagged = {'interop': interop, 'bench': bench}[profile](root, now)
    for name in tagged:
        print(name)


if __name__ == '__main__':
    main()
