//! Evaluation of parsed targets: the request context (time window, request xFilesFactor,
//! limits), argument binding and validation against each function's parameter
//! schema (graphite-web `validateParams`, but enforced: a bad argument is a 400), and fetching
//! paths and `seriesByTag` through the [`MetricSource`].

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use jiff::tz::TimeZone;

use crate::error::EvalError;
use crate::events::EventStore;
use crate::functions::{self, FunctionDef, Param, ParamType};
use crate::parse::{Arg, Expr};
use crate::series::{Series, py_float};
use charcoal_store::TagExpression;

use crate::source::{MetricSource, Selector};

/// Limits applied while evaluating one request (spec §21).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EvalLimits {
    pub max_series: usize,
    pub max_points: usize,
    pub deadline: Option<Instant>,
    pub timeout_ms: u64,
}

/// An evaluated argument.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    List(Vec<Series>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    None,
}

impl Value {
    fn describe(&self) -> String {
        match self {
            Value::List(l) => format!("a series list of {}", l.len()),
            Value::Str(s) => format!("'{s}'"),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => py_float(*f),
            Value::Bool(b) => {
                if *b {
                    "True".into()
                } else {
                    "False".into()
                }
            }
            Value::None => "None".into(),
        }
    }

    /// Python's `str()` of the value (used where graphite-web formats arguments into names).
    pub fn py_str(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            other => other.describe(),
        }
    }
}

/// The request being evaluated.
pub(crate) struct Ctx<'a> {
    pub source: &'a dyn MetricSource,
    pub start: i64,
    pub end: i64,
    pub now: i64,
    pub tz: TimeZone,
    /// Request-wide xFilesFactor (`xFilesFactor=` param; `setXFilesFactor` changes it).
    pub xff: f64,
    /// `template[name]=value` request parameters.
    pub template: BTreeMap<String, String>,
    /// The events `events()` counts; `None` when events are disabled.
    pub events: Option<&'a EventStore>,
    pub limits: EvalLimits,
    series_fetched: usize,
    points_fetched: usize,
    /// Running totals of `stacked()` per stack name, shared across targets.
    pub stacks: HashMap<String, Vec<f64>>,
    replacements: Vec<BTreeMap<String, Value>>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        source: &'a dyn MetricSource,
        start: i64,
        end: i64,
        now: i64,
        tz: TimeZone,
        limits: EvalLimits,
    ) -> Self {
        Ctx {
            source,
            start,
            end,
            now,
            tz,
            xff: 0.0,
            template: BTreeMap::new(),
            events: None,
            limits,
            series_fetched: 0,
            points_fetched: 0,
            stacks: HashMap::new(),
            replacements: Vec::new(),
        }
    }

    fn check_deadline(&self) -> Result<(), EvalError> {
        match self.limits.deadline {
            Some(d) if Instant::now() > d => Err(EvalError::Timeout {
                limit_ms: self.limits.timeout_ms,
            }),
            _ => Ok(()),
        }
    }

    /// Evaluates every target in order and concatenates the results.
    pub fn evaluate_targets(&mut self, targets: &[Expr]) -> Result<Vec<Series>, EvalError> {
        let mut out = Vec::new();
        for t in targets {
            out.extend(self.eval_list(t, "target")?);
        }
        Ok(out)
    }

    /// Evaluates an expression that must produce a series list.
    pub fn eval_list(&mut self, expr: &Expr, func: &str) -> Result<Vec<Series>, EvalError> {
        match self.eval(expr)? {
            Value::List(l) => Ok(l),
            other => Err(EvalError::Input {
                func: func.to_owned(),
                message: format!("expected a series list, got {}", other.describe()),
            }),
        }
    }

    /// Re-evaluates an argument over another window (movingAverage's look-back, timeShift…).
    pub fn eval_in_window(
        &mut self,
        arg: &Arg,
        start: i64,
        end: i64,
        func: &str,
    ) -> Result<Vec<Series>, EvalError> {
        let (s0, e0) = (self.start, self.end);
        self.start = start;
        self.end = end;
        let r = match arg {
            Arg::Expr(e) => self.eval_list(e, func),
            _ => Err(EvalError::Input {
                func: func.to_owned(),
                message: "expected a series list".into(),
            }),
        };
        self.start = s0;
        self.end = e0;
        r
    }

    /// Parses and evaluates a target built by a function (applyByNode, useSeriesAbove).
    pub fn eval_text(&mut self, target: &str, func: &str) -> Result<Vec<Series>, EvalError> {
        let expr = crate::parse::parse_target(target, 64).map_err(|e| EvalError::Input {
            func: func.to_owned(),
            message: format!("generated target '{target}': {e}"),
        })?;
        self.eval_list(&expr, func)
    }

    pub fn eval(&mut self, expr: &Expr) -> Result<Value, EvalError> {
        self.check_deadline()?;
        match expr {
            Expr::Path(path) => {
                let mut path = path.clone();
                if let Some(repl) = self.replacements.last() {
                    for (name, value) in repl {
                        let key = format!("${name}");
                        if path == key {
                            return Ok(match value {
                                Value::Str(s) if is_numeric_text(s) => s
                                    .parse::<f64>()
                                    .map_or_else(|_| value.clone(), Value::Float),
                                other => other.clone(),
                            });
                        }
                        path = path.replace(&key, &value.py_str());
                    }
                }
                self.fetch(&path).map(Value::List)
            }
            Expr::Template(t) => {
                let mut repl = BTreeMap::new();
                for (k, v) in &t.kwargs {
                    repl.insert(k.clone(), self.literal(v)?);
                }
                for (i, v) in t.args.iter().enumerate() {
                    repl.insert((i + 1).to_string(), self.literal(v)?);
                }
                for (k, v) in &self.template {
                    repl.insert(k.clone(), Value::Str(v.clone()));
                }
                self.replacements.push(repl);
                let r = self.eval(&t.expr);
                self.replacements.pop();
                r
            }
            Expr::Call(call) => {
                let def =
                    functions::lookup(&call.name).ok_or_else(|| EvalError::UnknownFunction {
                        name: call.name.clone(),
                    })?;
                let mut args = Vec::with_capacity(call.args.len());
                for a in &call.args {
                    args.push(self.arg_value(a)?);
                }
                let mut kwargs = Vec::with_capacity(call.kwargs.len());
                for (k, a) in &call.kwargs {
                    kwargs.push((k.clone(), self.arg_value(a)?));
                }
                let mut bound = bind(def, args, kwargs)?;
                bound.raw_first = call.args.first().cloned();
                let result = (def.eval)(self, &mut bound)?;
                Ok(Value::List(result))
            }
        }
    }

    fn literal(&self, a: &Arg) -> Result<Value, EvalError> {
        Ok(match a {
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::None => Value::None,
            Arg::Inf => Value::Float(f64::INFINITY),
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Expr(_) => {
                return Err(EvalError::Input {
                    func: "template".into(),
                    message: "only string and number arguments are allowed".into(),
                });
            }
        })
    }

    fn arg_value(&mut self, a: &Arg) -> Result<Value, EvalError> {
        match a {
            Arg::Expr(e) => self.eval(e),
            other => self.literal(other),
        }
    }

    fn account(&mut self, pattern: &str, series: usize, points: usize) -> Result<(), EvalError> {
        self.series_fetched += series;
        self.points_fetched += points;
        if self.series_fetched > self.limits.max_series {
            return Err(EvalError::TooManySeries {
                pattern: pattern.to_owned(),
                count: self.series_fetched,
                limit: self.limits.max_series,
            });
        }
        if self.points_fetched > self.limits.max_points {
            return Err(EvalError::TooManyPoints {
                count: self.points_fetched,
                limit: self.limits.max_points,
            });
        }
        Ok(())
    }

    /// Fetches every leaf matching a glob over the current window, sorted by name.
    pub fn fetch(&mut self, pattern: &str) -> Result<Vec<Series>, EvalError> {
        let mut names: Vec<String> = self
            .source
            .find(pattern)?
            .into_iter()
            .filter(|m| m.is_leaf)
            .map(|m| m.path)
            .collect();
        names.sort();
        names.dedup();
        if names.len() > self.limits.max_series {
            return Err(EvalError::TooManySeries {
                pattern: pattern.to_owned(),
                count: names.len(),
                limit: self.limits.max_series,
            });
        }
        self.fetch_names(pattern, Selector::Path(pattern), &names)
    }

    /// Fetches the named leaves (what `selector` matched) in order, counting them against the
    /// limits.
    fn fetch_names(
        &mut self,
        pattern: &str,
        selector: Selector<'_>,
        names: &[String],
    ) -> Result<Vec<Series>, EvalError> {
        let mut out = Vec::with_capacity(names.len());
        let source = self.source;
        let fetched = source.fetch_selection(selector, names, self.start, self.end, self.now)?;
        for (name, f) in names.iter().zip(fetched) {
            self.check_deadline()?;
            let Some(f) = f? else {
                continue;
            };
            self.account(pattern, 1, f.values.len())?;
            let values = f
                .values
                .into_iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect();
            let mut s = Series::new(name.clone(), f.start, f.end, f.step, values);
            s.path_expression = pattern.to_owned();
            s.xff = self.xff;
            out.push(s);
        }
        Ok(out)
    }

    /// `seriesByTag('tag=value', ...)`: tagged series matching every expression, by name.
    pub fn fetch_by_tags(&mut self, specs: &[String]) -> Result<Vec<Series>, EvalError> {
        let raw = format!(
            "seriesByTag({})",
            specs
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(",")
        );
        TagExpression::parse_all(specs).map_err(|e| EvalError::Input {
            func: "seriesByTag".into(),
            message: e.to_string(),
        })?;
        let mut names = self.source.find_tagged(specs)?;
        names.sort();
        names.dedup();
        self.fetch_names(&raw, Selector::Tags(specs), &names)
    }
}

fn is_numeric_text(s: &str) -> bool {
    let t = s.strip_prefix('-').unwrap_or(s);
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Arguments bound to a function's parameters.
#[derive(Debug)]
pub(crate) struct Args {
    pub func: &'static str,
    /// One slot per declared parameter (the multiple one included, holding its first value).
    slots: Vec<Option<Value>>,
    /// All values given for the trailing `multiple` parameter.
    pub rest: Vec<Value>,
    /// The first argument as written, for functions that re-evaluate it over another window.
    pub raw_first: Option<Arg>,
}

impl Args {
    fn slot(&self, i: usize) -> Option<&Value> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    /// Takes a series-list argument (empty when absent).
    pub fn list(&mut self, i: usize) -> Vec<Series> {
        match self.slots.get_mut(i).and_then(Option::take) {
            Some(Value::List(l)) => l,
            _ => Vec::new(),
        }
    }

    pub fn has(&self, i: usize) -> bool {
        self.slot(i).is_some()
    }

    pub fn value(&self, i: usize) -> Option<&Value> {
        self.slot(i)
    }

    pub fn float(&self, i: usize) -> Option<f64> {
        match self.slot(i)? {
            Value::Float(f) => Some(*f),
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    pub fn int(&self, i: usize) -> Option<i64> {
        match self.slot(i)? {
            Value::Int(v) => Some(*v),
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }

    pub fn str(&self, i: usize) -> Option<&str> {
        match self.slot(i)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn bool(&self, i: usize) -> Option<bool> {
        match self.slot(i)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Series lists given for a `multiple` seriesList parameter, concatenated.
    pub fn rest_lists(&mut self) -> Vec<Series> {
        let mut out = Vec::new();
        for v in self.rest.drain(..) {
            if let Value::List(l) = v {
                out.extend(l);
            }
        }
        out
    }

    pub fn input_err(&self, message: impl Into<String>) -> EvalError {
        EvalError::Input {
            func: self.func.to_owned(),
            message: message.into(),
        }
    }
}

/// graphite-web's `validateParams`, enforced.
fn bind(
    def: &'static FunctionDef,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> Result<Args, EvalError> {
    let params = def.params;
    let func = def.name;
    let mut slots: Vec<Option<Value>> = vec![None; params.len()];
    let mut rest = Vec::new();
    let total = args.len() + kwargs.len();
    let multiple_last = params.last().is_some_and(|p| p.multiple);
    let positional_params = if total > params.len() {
        if !multiple_last {
            return Err(EvalError::TooManyParams {
                func: func.to_owned(),
            });
        }
        params.len()
    } else {
        args.len()
    };
    for (i, value) in args.into_iter().enumerate() {
        let pi = i.min(params.len().saturating_sub(1));
        let Some(param) = params.get(pi) else {
            return Err(EvalError::TooManyParams {
                func: func.to_owned(),
            });
        };
        let v = coerce(func, param, value)?;
        if param.multiple {
            if slots[pi].is_none() {
                slots[pi] = Some(v.clone());
            }
            rest.push(v);
        } else if i < params.len() {
            slots[pi] = Some(v);
        } else {
            return Err(EvalError::TooManyParams {
                func: func.to_owned(),
            });
        }
    }
    let mut kw: HashMap<String, Value> = kwargs.into_iter().collect();
    if total > params.len() && !kw.is_empty() {
        let keys = kw.keys().cloned().collect::<Vec<_>>().join(", ");
        return Err(EvalError::UnexpectedKwargs {
            func: func.to_owned(),
            keys,
        });
    }
    for (pi, param) in params.iter().enumerate().skip(positional_params) {
        match kw.remove(param.name) {
            None | Some(Value::None) => {
                if param.required {
                    return Err(EvalError::MissingParam {
                        func: func.to_owned(),
                        param: param.name.to_owned(),
                    });
                }
            }
            Some(value) => {
                let v = coerce(func, param, value)?;
                if param.multiple {
                    rest.push(v.clone());
                }
                slots[pi] = Some(v);
            }
        }
    }
    if !kw.is_empty() {
        let mut keys: Vec<String> = kw.into_keys().collect();
        keys.sort();
        return Err(EvalError::UnexpectedKwargs {
            func: func.to_owned(),
            keys: keys.join(", "),
        });
    }
    Ok(Args {
        func,
        slots,
        rest,
        raw_first: None,
    })
}

/// Validates one value against a parameter's type and options (graphite-web `validateValue`).
fn coerce(func: &str, param: &Param, value: Value) -> Result<Value, EvalError> {
    if matches!(value, Value::None) && !param.required {
        return Ok(Value::None);
    }
    if !param.accepts_option(&value) {
        return Err(EvalError::ParamOption {
            func: func.to_owned(),
            param: param.name.to_owned(),
            got: value.describe(),
        });
    }
    let type_err = |expected: &'static str, v: &Value| EvalError::ParamType {
        func: func.to_owned(),
        param: param.name.to_owned(),
        expected,
        got: v.describe(),
    };
    Ok(match param.ty {
        ParamType::SeriesList | ParamType::SeriesLists => match value {
            Value::List(_) => value,
            v => return Err(type_err("a series list", &v)),
        },
        ParamType::Float => match value {
            Value::Float(_) => value,
            Value::Int(i) => Value::Float(i as f64),
            Value::Bool(b) => Value::Float(f64::from(u8::from(b))),
            Value::Str(ref s) => match s.trim().parse::<f64>() {
                Ok(f) => Value::Float(f),
                Err(_) => return Err(type_err("a number", &value)),
            },
            v => return Err(type_err("a number", &v)),
        },
        ParamType::Integer | ParamType::Node => match value {
            Value::Int(_) => value,
            Value::Bool(b) => Value::Int(i64::from(b)),
            Value::Str(ref s) => match s.trim().parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => return Err(type_err("an integer", &value)),
            },
            v => return Err(type_err("an integer", &v)),
        },
        ParamType::IntOrInf => match value {
            Value::Int(_) => value,
            Value::Float(f) if f == f64::INFINITY => value,
            v => return Err(type_err("an integer or inf", &v)),
        },
        ParamType::Boolean => match value {
            Value::Bool(_) => value,
            Value::Str(ref s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::Str(ref s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            Value::Int(0) => Value::Bool(false),
            Value::Int(1) => Value::Bool(true),
            Value::Float(0.0) => Value::Bool(false),
            Value::Float(1.0) => Value::Bool(true),
            v => return Err(type_err("a boolean", &v)),
        },
        ParamType::Interval => match value {
            Value::Str(ref s) if crate::attime::parse_time_offset(s).is_ok() => value,
            v => return Err(type_err("an interval like '1h'", &v)),
        },
        ParamType::String | ParamType::AggFunc | ParamType::AggOrSeriesFunc => match value {
            Value::List(_) => return Err(type_err("a string", &value)),
            Value::Str(_) | Value::None | Value::Bool(_) => value,
            other => Value::Str(other.py_str()),
        },
        ParamType::IntOrInterval => match value {
            Value::Int(_) | Value::Str(_) => value,
            v => return Err(type_err("an integer or an interval", &v)),
        },
        ParamType::NodeOrTag | ParamType::Tag | ParamType::Any | ParamType::Date => value,
    })
}

/// Calls a registered function with already evaluated positional arguments (groupByNode's
/// series-function callbacks, reduceSeries…).
pub(crate) fn call_function(
    ctx: &mut Ctx<'_>,
    def: &'static FunctionDef,
    args: Vec<Value>,
) -> Result<Vec<Series>, EvalError> {
    let mut bound = bind(def, args, Vec::new())?;
    (def.eval)(ctx, &mut bound)
}
