/*
 * An Etsy StatsD config in the style of its exampleConfig.js, as operators write them:
 * comments, unquoted keys, single quotes, leading and trailing commas.
 */
{
  graphitePort: 2003
, graphiteHost: "127.0.0.1"
, port: 8125
, address: '127.0.0.1'
, mgmt_address: '127.0.0.1'
, flushInterval: 10000   // ms
, percentThreshold: [ 90, 95, 99 ]
, deleteIdleStats: true
, deleteGauges: false
, graphite: {
    legacyNamespace: false,
    globalPrefix: 'stats',
    globalSuffix: 'web01',
  }
, histogram: [ { metric: 'api.latency', bins: [ 10, 50, 100, 'inf' ] } ]
, backends: [ './backends/graphite' ]
, log: { backend: 'syslog' }
,
}
