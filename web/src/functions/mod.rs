//! The render-function catalogue. Each function is one [`FunctionDef`] entry — name, group,
//! parameter schema, description and implementation — listed in its group module's `DEFS`
//! table. Evaluation validates arguments against the schema, and `/functions` is generated
//! from the same entries (spec §12.6, §14), so adding a function is adding one entry.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value as Json, json};

use crate::error::EvalError;
use crate::eval::{Args, Ctx, Value};
use crate::series::{AGG_FUNC_NAMES, Series};

/// Declares `const fn $ctor(name, description, params, eval)`, the entry constructor of one
/// group module (the group is what `/functions` lists it under).
macro_rules! group_constructor {
    ($ctor:ident, $group:literal) => {
        const fn $ctor(
            name: &'static str,
            description: &'static str,
            params: &'static [super::Param],
            eval: super::EvalFn,
        ) -> super::FunctionDef {
            super::FunctionDef::new($group, name, description, params, eval)
        }
    };
}

mod alias;
mod calculate;
mod combine;
mod filter;
mod graph;
mod special;
mod transform;

#[cfg(test)]
mod tests;

/// Implementation of one render function.
pub(crate) type EvalFn = fn(&mut Ctx<'_>, &mut Args) -> Result<Vec<Series>, EvalError>;

/// One render function.
pub(crate) struct FunctionDef {
    pub name: &'static str,
    pub group: &'static str,
    pub description: &'static str,
    pub params: &'static [Param],
    /// Listed among `aggOrSeriesFunc` options (graphite-web's `aggregator = True`).
    pub aggregator: bool,
    pub eval: EvalFn,
}

/// Parameter types of graphite-web's schema (spec §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamType {
    SeriesList,
    /// reduceSeries' input, a list of series lists in graphite-web (mapSeries' output).
    SeriesLists,
    Boolean,
    Integer,
    Float,
    String,
    Node,
    NodeOrTag,
    Tag,
    Interval,
    IntOrInterval,
    IntOrInf,
    Date,
    AggFunc,
    AggOrSeriesFunc,
    Any,
}

impl ParamType {
    fn json_name(self) -> &'static str {
        match self {
            ParamType::SeriesList => "seriesList",
            ParamType::SeriesLists => "seriesLists",
            ParamType::Boolean => "boolean",
            ParamType::Integer => "integer",
            ParamType::Float => "float",
            ParamType::String => "string",
            ParamType::Node => "node",
            ParamType::NodeOrTag => "nodeOrTag",
            ParamType::Tag => "tag",
            ParamType::Interval => "interval",
            ParamType::IntOrInterval => "intOrInterval",
            ParamType::IntOrInf => "intOrInf",
            ParamType::Date => "date",
            ParamType::AggFunc => "aggFunc",
            ParamType::AggOrSeriesFunc => "aggOrSeriesFunc",
            ParamType::Any => "any",
        }
    }
}

/// A literal in a schema (default, option or suggestion).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Lit {
    Str(&'static str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Inf,
    Null,
}

impl Lit {
    fn to_json(self) -> Json {
        match self {
            Lit::Str(s) => json!(s),
            Lit::Int(i) => json!(i),
            Lit::Float(f) => json!(f),
            Lit::Bool(b) => json!(b),
            // Serialised as the text 1e9999 by the /functions writer (spec §14).
            Lit::Inf => json!(INF_MARKER),
            Lit::Null => Json::Null,
        }
    }

    fn matches(self, v: &Value) -> bool {
        match (self, v) {
            (Lit::Str(a), Value::Str(b)) => a == b,
            (Lit::Int(a), Value::Int(b)) => a == *b,
            (Lit::Bool(a), Value::Bool(b)) => a == *b,
            (Lit::Null, Value::None) => true,
            _ => false,
        }
    }
}

/// Placeholder replaced by `1e9999` in the serialised catalogue.
pub(crate) const INF_MARKER: &str = "\u{0}charcoal-inf\u{0}";

/// Closed lists of accepted values.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Options {
    None,
    List(&'static [Lit]),
    /// The aggregation names (`average`, `sum`, …).
    AggFuncs,
    /// Aggregation names plus every function marked `aggregator`.
    AggOrSeriesFuncs,
    /// `legendValue`: aggregation names, their `…Series` forms, `si` and `binary`.
    LegendValue,
}

/// One declared parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    pub multiple: bool,
    pub default: Option<Lit>,
    pub options: Options,
    pub suggestions: &'static [Lit],
}

impl Param {
    pub const fn new(name: &'static str, ty: ParamType) -> Self {
        let options = match ty {
            ParamType::AggFunc => Options::AggFuncs,
            ParamType::AggOrSeriesFunc => Options::AggOrSeriesFuncs,
            _ => Options::None,
        };
        Param {
            name,
            ty,
            required: false,
            multiple: false,
            default: None,
            options,
            suggestions: &[],
        }
    }
    pub const fn req(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn multi(mut self) -> Self {
        self.multiple = true;
        self
    }
    pub const fn default(mut self, d: Lit) -> Self {
        self.default = Some(d);
        self
    }
    pub const fn options(mut self, o: Options) -> Self {
        self.options = o;
        self
    }
    pub const fn suggest(mut self, s: &'static [Lit]) -> Self {
        self.suggestions = s;
        self
    }

    fn option_names(&self) -> Vec<Json> {
        match self.options {
            Options::None => Vec::new(),
            Options::List(l) => l.iter().map(|o| o.to_json()).collect(),
            Options::AggFuncs => AGG_FUNC_NAMES.iter().map(|s| json!(s)).collect(),
            Options::AggOrSeriesFuncs => {
                let mut names: Vec<&str> = AGG_FUNC_NAMES.to_vec();
                names.extend(registry().values().filter(|d| d.aggregator).map(|d| d.name));
                names.sort_unstable();
                names.dedup();
                names.into_iter().map(|s| json!(s)).collect()
            }
            Options::LegendValue => {
                let mut names: Vec<String> =
                    AGG_FUNC_NAMES.iter().map(|s| (*s).to_owned()).collect();
                names.extend(AGG_FUNC_NAMES.iter().map(|s| format!("{s}Series")));
                names.push("si".to_owned());
                names.push("binary".to_owned());
                names.sort();
                names.into_iter().map(|s| json!(s)).collect()
            }
        }
    }

    /// graphite-web's `value not in self.options` check.
    pub fn accepts_option(&self, v: &Value) -> bool {
        match self.options {
            Options::None => true,
            Options::List(l) => l.iter().any(|o| o.matches(v)),
            Options::AggFuncs => matches!(v, Value::Str(s) if is_agg_name(s)),
            Options::AggOrSeriesFuncs => {
                matches!(v, Value::Str(s) if is_agg_name(s) || lookup(s).is_some_and(|d| d.aggregator))
            }
            Options::LegendValue => matches!(v, Value::Str(_)),
        }
    }

    fn to_json(self) -> Json {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.ty.json_name()));
        if self.required {
            m.insert("required".into(), json!(true));
        }
        if let Some(d) = self.default {
            m.insert("default".into(), d.to_json());
        }
        if self.multiple {
            m.insert("multiple".into(), json!(true));
        }
        let options = self.option_names();
        if !options.is_empty() {
            m.insert("options".into(), Json::Array(options));
        }
        if !self.suggestions.is_empty() {
            m.insert(
                "suggestions".into(),
                self.suggestions.iter().map(|s| s.to_json()).collect(),
            );
        }
        Json::Object(m)
    }
}

/// graphite-web accepts `sumSeries`-style names where an aggregation name is expected.
fn is_agg_name(s: &str) -> bool {
    AGG_FUNC_NAMES.contains(&s)
        || s.strip_suffix("Series")
            .is_some_and(|b| AGG_FUNC_NAMES.contains(&b))
}

fn registry() -> &'static HashMap<&'static str, &'static FunctionDef> {
    static REGISTRY: OnceLock<HashMap<&'static str, &'static FunctionDef>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let tables: [&'static [FunctionDef]; 8] = [
            alias::DEFS,
            combine::DEFS,
            transform::DEFS,
            calculate::DEFS,
            calculate::HOLT_WINTERS,
            filter::DEFS,
            special::DEFS,
            graph::DEFS,
        ];
        tables
            .iter()
            .flat_map(|t| t.iter())
            .map(|d| (d.name, d))
            .collect()
    })
}

/// The function called `name`, if implemented.
pub(crate) fn lookup(name: &str) -> Option<&'static FunctionDef> {
    registry().get(name).copied()
}

/// Every implemented function, sorted by name.
pub(crate) fn all() -> Vec<&'static FunctionDef> {
    let mut v: Vec<_> = registry().values().copied().collect();
    v.sort_by_key(|d| d.name);
    v
}

impl FunctionDef {
    const fn new(
        group: &'static str,
        name: &'static str,
        description: &'static str,
        params: &'static [Param],
        eval: EvalFn,
    ) -> FunctionDef {
        FunctionDef {
            name,
            group,
            description,
            params,
            aggregator: false,
            eval,
        }
    }

    /// Also listed among the `aggOrSeriesFunc` options.
    const fn aggregator(self) -> FunctionDef {
        FunctionDef {
            aggregator: true,
            ..self
        }
    }

    /// The same function under another name, as graphite-web registers its short aliases.
    const fn alias(self, name: &'static str, description: &'static str) -> FunctionDef {
        FunctionDef {
            name,
            description,
            ..self
        }
    }

    /// A Python-style signature like graphite-web's `function` field.
    fn signature(&self) -> String {
        let parts: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                if p.multiple {
                    format!("*{}", p.name)
                } else if p.required {
                    p.name.to_owned()
                } else {
                    let d = match p.default {
                        Some(Lit::Str(s)) => format!("'{s}'"),
                        Some(Lit::Int(i)) => i.to_string(),
                        Some(Lit::Float(f)) => crate::series::py_float(f),
                        Some(Lit::Bool(true)) => "True".into(),
                        Some(Lit::Bool(false)) => "False".into(),
                        Some(Lit::Inf) => "inf".into(),
                        Some(Lit::Null) | None => "None".into(),
                    };
                    format!("{}={d}", p.name)
                }
            })
            .collect();
        format!("{}({})", self.name, parts.join(", "))
    }

    /// The entry of `/functions` for this function.
    pub fn to_json(&self) -> Json {
        json!({
            "name": self.name,
            "function": self.signature(),
            "description": self.description,
            "module": "graphite.render.functions",
            "group": self.group,
            "params": self.params.iter().map(|p| p.to_json()).collect::<Vec<_>>(),
        })
    }
}

// ---- helpers shared by the group modules ----

pub(crate) use ParamType as T;

/// `seriesList` first parameter, required.
pub(crate) const SERIES: Param = Param::new("seriesList", T::SeriesList).req();
/// `*seriesLists`, required.
pub(crate) const SERIES_LISTS: Param = Param::new("seriesLists", T::SeriesList).req().multi();

/// Formats a float argument for names like graphite-web's `%g`.
pub(crate) fn g(v: f64) -> String {
    crate::series::py_g(v)
}

/// Python `str()` of a float-typed argument (tags hold stringified values).
pub(crate) fn fstr(v: f64) -> String {
    crate::series::py_float(v)
}

/// Applies `f` to every value of every series, renaming with `name(series)`.
pub(crate) fn map_values(
    list: &mut [Series],
    name: impl Fn(&str) -> String,
    tag: Option<(&str, String)>,
    f: impl Fn(f64) -> f64,
) {
    for s in list.iter_mut() {
        for v in s.values.iter_mut() {
            if !v.is_nan() {
                *v = f(*v);
            }
        }
        if let Some((k, val)) = &tag {
            s.tag(k, val.clone());
        }
        let n = name(&s.name);
        s.rename(n);
    }
}

/// Compiles a Python-syntax regex for alias/grep functions.
pub(crate) fn regex(func: &str, pattern: &str) -> Result<regex::Regex, EvalError> {
    // Python's `\Z` (end of text) is `\z` in the regex crate; other common syntax is shared.
    let translated = pattern.replace("\\Z", "\\z");
    regex::Regex::new(&translated).map_err(|e| EvalError::Regex {
        func: func.to_owned(),
        pattern: pattern.to_owned(),
        reason: e.to_string().lines().last().unwrap_or("invalid").to_owned(),
    })
}

/// Node (integer) or tag (name) selection of graphite-web's `getNodeOrTag`.
pub(crate) fn node_or_tag(series: &Series, key: &Value, path: Option<&str>) -> String {
    if let Some(n) = match key {
        Value::Int(i) => Some(*i),
        Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    } {
        let base = path.unwrap_or(&series.name);
        let metric = base.split(';').next().unwrap_or("");
        let nodes: Vec<&str> = metric.split('.').collect();
        let idx = if n < 0 { nodes.len() as i64 + n } else { n };
        if idx >= 0 && (idx as usize) < nodes.len() {
            return nodes[idx as usize].to_owned();
        }
    }
    series.tags.get(&key.py_str()).cloned().unwrap_or_default()
}

/// graphite-web's `aggKey`: selected nodes/tags joined by `.`, looking inside a function-wrapped
/// name for its first path expression.
pub(crate) fn agg_key(series: &Series, nodes: &[Value]) -> String {
    let path = if series.name.ends_with(')') {
        crate::parse::first_path_expression(&series.name)
    } else {
        None
    };
    nodes
        .iter()
        .map(|n| node_or_tag(series, n, path.as_deref()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Groups series by key in first-seen order.
pub(crate) fn group_by(
    list: Vec<Series>,
    key: impl Fn(&Series) -> String,
) -> Vec<(String, Vec<Series>)> {
    let mut order: Vec<(String, Vec<Series>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in list {
        let k = key(&s);
        match index.get(&k) {
            Some(&i) => order[i].1.push(s),
            None => {
                index.insert(k.clone(), order.len());
                order.push((k, vec![s]));
            }
        }
    }
    order
}
