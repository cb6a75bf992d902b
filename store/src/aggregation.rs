//! Aggregation methods used when a finer archive rolls up into a coarser one (spec section 7).

use std::fmt;
use std::str::FromStr;

use crate::error::WhisperError;

/// How the points of one coarse interval are combined. The discriminants are the codes stored in
/// the header (Python whisper's numbering; go-whisper's 6-8 differ, spec section 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum AggregationMethod {
    #[default]
    Average = 1,
    Sum = 2,
    Last = 3,
    Max = 4,
    Min = 5,
    AvgZero = 6,
    AbsMax = 7,
    AbsMin = 8,
}

impl AggregationMethod {
    /// Every method, in code order.
    pub const ALL: [AggregationMethod; 8] = [
        AggregationMethod::Average,
        AggregationMethod::Sum,
        AggregationMethod::Last,
        AggregationMethod::Max,
        AggregationMethod::Min,
        AggregationMethod::AvgZero,
        AggregationMethod::AbsMax,
        AggregationMethod::AbsMin,
    ];

    /// The method stored as `code` in a header, if it is one.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.get(code.checked_sub(1)? as usize).copied()
    }

    /// The code stored in the header.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The name whisper uses (`avg_zero`, `absmax`, ...).
    pub fn name(self) -> &'static str {
        match self {
            AggregationMethod::Average => "average",
            AggregationMethod::Sum => "sum",
            AggregationMethod::Last => "last",
            AggregationMethod::Max => "max",
            AggregationMethod::Min => "min",
            AggregationMethod::AvgZero => "avg_zero",
            AggregationMethod::AbsMax => "absmax",
            AggregationMethod::AbsMin => "absmin",
        }
    }

    /// Combines one coarse interval. `neighbors` holds every fine slot of the interval in time
    /// order, `None` where unknown; at least one must be known (the caller checks the
    /// xFilesFactor first). The arithmetic follows Python's: left-to-right sums from 0, and
    /// `max`/`min` that keep the earliest element unless a later one compares strictly better
    /// (so ties, and NaN, resolve the way whisper resolves them).
    pub fn aggregate(self, neighbors: &[Option<f64>]) -> f64 {
        self.aggregate_iter(neighbors.iter().copied())
    }

    /// [`aggregate`](Self::aggregate) over an iterator, so rollups can read slots straight
    /// from a mapped file without collecting them.
    pub(crate) fn aggregate_iter<I>(self, neighbors: I) -> f64
    where
        I: Iterator<Item = Option<f64>> + Clone,
    {
        let known = neighbors.clone().flatten();
        let first = known.clone().next().unwrap_or(f64::NAN);
        match self {
            AggregationMethod::Average => {
                let (sum, count) = known.fold((0.0, 0u64), |(s, n), x| (s + x, n + 1));
                sum / count as f64
            }
            AggregationMethod::Sum => known.fold(0.0, |a, b| a + b),
            AggregationMethod::Last => known.last().unwrap_or(f64::NAN),
            AggregationMethod::Max => known.fold(first, |m, x| if x > m { x } else { m }),
            AggregationMethod::Min => known.fold(first, |m, x| if x < m { x } else { m }),
            AggregationMethod::AvgZero => {
                // Python's `x or 0`: NaN is truthy, so it stays in the sum.
                let (sum, count) =
                    neighbors.fold((0.0, 0u64), |(s, n), x| (s + x.unwrap_or(0.0), n + 1));
                sum / count as f64
            }
            AggregationMethod::AbsMax => {
                known.fold(first, |m, x| if x.abs() > m.abs() { x } else { m })
            }
            AggregationMethod::AbsMin => {
                known.fold(first, |m, x| if x.abs() < m.abs() { x } else { m })
            }
        }
    }
}

impl fmt::Display for AggregationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AggregationMethod {
    type Err = WhisperError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| WhisperError::AggregationMethod(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec vector V13: 10 s values [3, -8, null, 4, -2, null] into one 60 s point.
    #[test]
    fn every_method_on_vector_v13() {
        let data = [Some(3.0), Some(-8.0), None, Some(4.0), Some(-2.0), None];
        let expected = [
            ("average", -0.75),
            ("sum", -3.0),
            ("last", -2.0),
            ("max", 4.0),
            ("min", -8.0),
            ("avg_zero", -0.5),
            ("absmax", -8.0),
            ("absmin", -2.0),
        ];
        for (name, value) in expected {
            let method: AggregationMethod = name.parse().unwrap();
            assert_eq!(method.aggregate(&data), value, "{name}");
        }
    }

    /// Spec vector V05: codes 1-8 and the error for an unknown name.
    #[test]
    fn codes_and_names() {
        for (code, method) in AggregationMethod::ALL.iter().enumerate() {
            assert_eq!(method.code(), code as u32 + 1);
            assert_eq!(AggregationMethod::from_code(code as u32 + 1), Some(*method));
        }
        assert_eq!(AggregationMethod::from_code(0), None);
        assert_eq!(AggregationMethod::from_code(9), None);
        assert_eq!(
            "median"
                .parse::<AggregationMethod>()
                .unwrap_err()
                .to_string(),
            "Unrecognized aggregation method: median"
        );
    }

    #[test]
    fn ties_keep_the_earliest_value() {
        let data = [Some(-5.0), Some(5.0)];
        assert_eq!(AggregationMethod::AbsMax.aggregate(&data), -5.0);
        assert_eq!(AggregationMethod::AbsMin.aggregate(&data), -5.0);
    }

    /// Spec vector V26: avg_zero with one known value of six.
    #[test]
    fn avg_zero_counts_missing_as_zero() {
        let data = [Some(6.0), None, None, None, None, None];
        assert_eq!(AggregationMethod::AvgZero.aggregate(&data), 1.0);
    }

    #[test]
    fn python_max_keeps_a_leading_nan() {
        let data = [Some(f64::NAN), Some(1.0)];
        assert!(AggregationMethod::Max.aggregate(&data).is_nan());
        let data = [Some(1.0), Some(f64::NAN), Some(0.5)];
        assert_eq!(AggregationMethod::Max.aggregate(&data), 1.0);
    }
}
