//! charcoal-web: the Graphite render API and web UI. Not built yet; see issues 5 and 6.
