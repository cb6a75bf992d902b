//! charcoal-statsd: the Etsy-compatible StatsD server. Not built yet; see issue 4.
