//! charcoal-node-agent: host metrics, Munin plugins and the munin-node protocol. Not built yet;
//! see issue 7.
