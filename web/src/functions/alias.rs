//! Alias: functions that only change series names.

use super::{Args, FunctionDef, Options, Param, SERIES, T, agg_key, regex};
use crate::error::EvalError;
use crate::eval::Value;
use crate::pyfmt::python_percent_format;
use crate::series::{AggFunc, Series, py_float};

group_constructor!(def, "Alias");

pub(crate) const DEFS: &[FunctionDef] = &[
    def(
        "alias",
        "Gives every series the same new name; tags are unchanged.",
        &[SERIES, Param::new("newName", T::String).req()],
        |_, a| {
            let name = a.str(1).unwrap_or("").to_owned();
            let mut l = a.list(0);
            for s in &mut l {
                s.name.clone_from(&name);
            }
            Ok(l)
        },
    ),
    def(
        "aliasByNode",
        "Names each series after some nodes of its path (0 is the first, -1 the last) or tag values, joined by dots. Works through wrapping functions by looking at the first path inside the name.",
        &[SERIES, Param::new("nodes", T::NodeOrTag).req().multi()],
        alias_by_node,
    ),
    def(
        "aliasByTags",
        "Names each series after the values of the given tags (or nodes, for integers), joined by dots; 'name' is the metric name.",
        &[SERIES, Param::new("tags", T::NodeOrTag).req().multi()],
        alias_by_node,
    ),
    def(
        "aliasByMetric",
        "Names each series after the last node of its innermost path.",
        &[SERIES],
        |_, a| {
            let mut l = a.list(0);
            for s in &mut l {
                s.name = substr(&s.name, -1, 0);
            }
            Ok(l)
        },
    ),
    def(
        "aliasSub",
        "Regular-expression substitution on each name (Python syntax; \\1 or \\g<name> refer to groups).",
        &[
            SERIES,
            Param::new("search", T::String).req(),
            Param::new("replace", T::String).req(),
        ],
        |_, a| {
            let re = regex("aliasSub", a.str(1).unwrap_or(""))?;
            let replace = python_replacement(a.str(2).unwrap_or(""));
            let mut l = a.list(0);
            for s in &mut l {
                if let std::borrow::Cow::Owned(n) = re.replace_all(&s.name, replace.as_str()) {
                    s.name = n;
                }
            }
            Ok(l)
        },
    ),
    def(
        "aliasQuery",
        "Names each series from another query: search→replace (a regular expression, Python syntax) turns the name into a target, and the last value of that target's first series is put into newName with Python's % formatting (e.g. 'Channel %d MHz').",
        &[
            SERIES,
            Param::new("search", T::String).req(),
            Param::new("replace", T::String).req(),
            Param::new("newName", T::String).req(),
        ],
        alias_query,
    ),
    def(
        "legendValue",
        "Appends statistics to each name, e.g. ' (avg: 31.2)', for each value type (avg, total, min, max, last, …); a final 'si' or 'binary' formats the values with unit prefixes in aligned columns.",
        &[
            SERIES,
            Param::new("valuesTypes", T::String)
                .multi()
                .options(Options::LegendValue),
        ],
        legend_value,
    ),
    def(
        "upper",
        "Upper-cases each name, or only the characters at the given positions.",
        &[SERIES, Param::new("pos", T::Integer).multi()],
        |_, a| change_case(a, true),
    ),
    def(
        "lower",
        "Lower-cases each name, or only the characters at the given positions.",
        &[SERIES, Param::new("pos", T::Integer).multi()],
        |_, a| change_case(a, false),
    ),
];

fn alias_by_node(_: &mut super::Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let nodes = a.rest.clone();
    let mut l = a.list(0);
    for s in &mut l {
        s.name = agg_key(s, &nodes);
    }
    Ok(l)
}

/// graphite-web's `aliasQuery`; the generated target is evaluated over the same request.
fn alias_query(ctx: &mut super::Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let re = regex("aliasQuery", a.str(1).unwrap_or(""))?;
    let replace = python_replacement(a.str(2).unwrap_or(""));
    let new_name = a.str(3).unwrap_or("").to_owned();
    let mut l = a.list(0);
    for s in &mut l {
        let query = re.replace_all(&s.name, replace.as_str()).into_owned();
        let found = ctx.eval_text(&query, "aliasQuery")?;
        let Some(first) = found.first() else {
            return Err(a.input_err(format!("No series found with query: {query}")));
        };
        let current = AggFunc::Last.apply(&first.values);
        if current.is_nan() {
            return Err(a.input_err(format!("Cannot get last value of series: {}", first.name)));
        }
        s.name = python_percent_format(&new_name, current)
            .map_err(|e| a.input_err(format!("newName '{new_name}': {e}")))?;
    }
    Ok(l)
}

/// graphite-web's `substr` on a name: the innermost argument text, nodes `start..stop`.
pub(crate) fn substr(name: &str, start: i64, stop: i64) -> String {
    let left = name.rfind('(').map_or(0, |i| i + 1);
    let right = name.find(')').unwrap_or(name.len() + 1);
    let clean = if left <= right.min(name.len()) {
        &name[left..right.min(name.len())]
    } else {
        ""
    };
    let nodes: Vec<&str> = clean.split('.').collect();
    let len = nodes.len() as i64;
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) } as usize;
    let (a, b) = (
        norm(start),
        if stop == 0 { nodes.len() } else { norm(stop) },
    );
    let joined = if a < b {
        nodes[a..b].join(".")
    } else {
        String::new()
    };
    match joined.find(',') {
        Some(i) => joined[..i].to_owned(),
        None => joined,
    }
}

/// Translates a Python `re.sub` replacement (`\1`, `\g<1>`, `\g<name>`, `\\`) into the regex
/// crate's syntax (`${1}`, `${name}`, `$$`).
pub(crate) fn python_replacement(rep: &str) -> String {
    let mut out = String::with_capacity(rep.len() + 8);
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut num = String::new();
                    while let Some(&d) = chars.peek() {
                        if d.is_ascii_digit() && num.len() < 2 {
                            num.push(d);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    out.push_str(&format!("${{{num}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                _ => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}

/// glyph.py's `format_units` (si or binary prefixes).
pub(crate) fn format_units(v: f64, system: &str) -> (f64, &'static str) {
    let units: &[(&str, f64)] = if system == "binary" {
        &[
            ("Pi", 1_125_899_906_842_624.0),
            ("Ti", 1_099_511_627_776.0),
            ("Gi", 1_073_741_824.0),
            ("Mi", 1_048_576.0),
            ("Ki", 1024.0),
        ]
    } else {
        &[("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)]
    };
    for (prefix, size) in units {
        if v.abs() >= *size {
            let mut v2 = v / size;
            if v2 - v2.floor() < 1e-11 && v > 1.0 {
                v2 = v2.floor();
            }
            return (v2, prefix);
        }
    }
    let mut v = v;
    if v - v.floor() < 1e-11 && v > 1.0 {
        v = v.floor();
    }
    (v, "")
}

fn legend_value(_: &mut super::Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let mut types: Vec<String> = a.rest.iter().map(Value::py_str).collect();
    let system = match types.last().map(String::as_str) {
        Some(s @ ("si" | "binary")) => {
            let s = s.to_owned();
            types.pop();
            Some(s)
        }
        _ => None,
    };
    let mut l = a.list(0);
    for t in &types {
        let f = AggFunc::parse(t);
        for s in &mut l {
            let value = f.map(|f| f.apply(&s.values));
            match &system {
                None => {
                    let text = match value {
                        None => "(?)".to_owned(),
                        Some(v) if v.is_nan() => "None".to_owned(),
                        Some(v) => py_float(v),
                    };
                    s.name = format!("{} ({t}: {text})", s.name);
                }
                Some(sys) => {
                    let formatted = match value {
                        None => "(?)".to_owned(),
                        Some(v) if v.is_nan() => "None".to_owned(),
                        Some(v) => {
                            let (x, p) = format_units(v, sys);
                            format!("{x:.2}{p}")
                        }
                    };
                    s.name = format!("{:<20}{:<5}{:<10}", s.name, t, formatted);
                }
            }
        }
    }
    Ok(l)
}

fn change_case(a: &mut Args, upper: bool) -> Result<Vec<Series>, EvalError> {
    let positions: Vec<i64> = a
        .rest
        .iter()
        .filter_map(|v| {
            if let Value::Int(i) = v {
                Some(*i)
            } else {
                None
            }
        })
        .collect();
    let mut l = a.list(0);
    for s in &mut l {
        if positions.is_empty() {
            s.name = if upper {
                s.name.to_uppercase()
            } else {
                s.name.to_lowercase()
            };
        } else {
            let mut chars: Vec<char> = s.name.chars().collect();
            let len = chars.len() as i64;
            for &p in &positions {
                let i = if p < 0 { len + p } else { p };
                if let Some(c) = usize::try_from(i).ok().and_then(|i| chars.get_mut(i)) {
                    *c = if upper {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    };
                }
            }
            s.name = chars.into_iter().collect();
        }
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_translation() {
        assert_eq!(python_replacement(r"\1 A"), "${1} A");
        assert_eq!(python_replacement(r"\g<host>-\g<2>"), "${host}-${2}");
        assert_eq!(python_replacement("cost $5"), "cost $$5");
        assert_eq!(python_replacement(r"a\\b"), r"a\b");
    }

    #[test]
    fn substr_of_names() {
        assert_eq!(substr("scale(a.b.cpu,2)", -1, 0), "cpu");
        assert_eq!(substr("a.b.c", 1, 0), "b.c");
        assert_eq!(substr("a.b.c", 0, 2), "a.b");
        assert_eq!(substr("sumSeries(a.b,c.d)", -1, 0), "d");
    }
}
