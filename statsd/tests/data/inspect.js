const util = require('util');
const cases = [
  {},
  {'statsd.timestamp_lag': 0},
  {'statsd.bad_lines_seen': 0, 'foo.bar': 1, 'statsd.packets_received': 12},
  {abc: -0, x: NaN},
  {'tm.a': []},
  {t: [1,2,3]},
  {t: [1,2,3,4,5,6,7,8,9,10]},
  {'timer.name': Array.from({length: 30}, (_, i) => i * 37.5)},
  {'t': Array.from({length: 130}, (_, i) => i)},
  {'a': [1,2], 'b': [100000, 2.5, 3, 4, 5, 6, 7], 'c-d': [0.001]},
];
for (const c of cases) console.log(JSON.stringify(util.inspect(c)));
