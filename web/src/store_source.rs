//! [`MetricSource`] for charcoal-store's [`Store`]: finds through its index, fetches through
//! its write cache (a point is graphable the moment it is accepted), and answers `seriesByTag`
//! from its tag index.

use charcoal_store::{Glob, Store};

use crate::error::SourceError;
use crate::series::tags_from_name;
use crate::source::{FetchedSeries, FindMatch, MetricSource};

impl MetricSource for Store {
    fn find(&self, pattern: &str) -> Result<Vec<FindMatch>, SourceError> {
        if pattern.contains(';') {
            // An exact tagged name: present if the tag index knows it.
            let exprs: Vec<String> = tags_from_name(pattern)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let found = self.find_tagged(&exprs)?;
            return Ok(found
                .into_iter()
                .filter(|n| n == pattern)
                .map(|path| FindMatch {
                    path,
                    is_leaf: true,
                })
                .collect());
        }
        let mut out: Vec<FindMatch> = Store::find(self, pattern)
            .into_iter()
            .map(|m| FindMatch {
                path: m.path,
                is_leaf: m.is_leaf,
            })
            .collect();
        // graphite-web's finder lists the `_tagged` directory at the root (spec §9); Grafana
        // hides it. The store keeps tagged series out of its tree, so it is added here.
        let root_match = !pattern.contains('.') && Glob::new(pattern).matches("_tagged");
        if root_match
            && out.iter().all(|m| m.path != "_tagged")
            && !self.tagged_series()?.is_empty()
        {
            out.push(FindMatch {
                path: "_tagged".to_owned(),
                is_leaf: false,
            });
        }
        Ok(out)
    }

    fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, SourceError> {
        let series =
            Store::fetch(self, name, from, until, now).map_err(|e| SourceError::new(name, e))?;
        Ok(series.map(|s| FetchedSeries {
            start: s.start,
            end: s.end,
            step: s.step,
            values: s.values,
        }))
    }

    fn tagged_series(&self) -> Result<Vec<String>, SourceError> {
        Ok(self
            .all_metrics()
            .into_iter()
            .filter(|n| n.contains(';'))
            .collect())
    }

    fn find_tagged(&self, expressions: &[String]) -> Result<Vec<String>, SourceError> {
        let exprs: Vec<&str> = expressions.iter().map(String::as_str).collect();
        self.find_series_by_tag(&exprs)
            .map_err(|e| SourceError::new(expressions.join(","), e))
    }

    fn leaves(&self) -> Result<Vec<String>, SourceError> {
        let mut all = self.all_metrics();
        all.sort();
        Ok(all)
    }
}
