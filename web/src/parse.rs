//! Target expressions: a recursive-descent parser for graphite-web's grammar (spec §8):
//! paths with globs and `{a,b}` alternatives, nested calls, strings, numbers, booleans, `None`,
//! `inf`, keyword arguments, pipes (`a.b | sumSeries()`), and `template(...)`.
//! Pure: text in, tree out. Unlike graphite-web, the whole target must be consumed (spec §5).

use crate::error::ParseError;

/// A parsed target expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A metric path or glob, exactly as written (escapes resolved).
    Path(String),
    /// A function call; pipes are already folded into nested calls.
    Call(Call),
    /// `template(expr, args...)`: textual `$name` substitution inside `expr`.
    Template(Box<Template>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub name: String,
    pub args: Vec<Arg>,
    pub kwargs: Vec<(String, Arg)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    pub expr: Expr,
    pub args: Vec<Arg>,
    pub kwargs: Vec<(String, Arg)>,
}

/// One argument of a call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Bool(bool),
    Int(i64),
    Float(f64),
    None,
    Inf,
    /// The text between the quotes, backslashes kept (graphite-web does not unescape).
    Str(String),
    Expr(Expr),
}

/// Positional and keyword arguments of a call.
type ArgList = (Vec<Arg>, Vec<(String, Arg)>);

/// Parses one whole target. `max_depth` bounds call nesting (a limit Charcoal adds, spec §21).
pub(crate) fn parse_target(input: &str, max_depth: usize) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: input.as_bytes(),
        src: input,
        pos: 0,
        depth: 0,
        max_depth,
    };
    p.ws();
    if p.pos == p.s.len() {
        return Err(p.err("a metric path or function call"));
    }
    let expr = p.expression()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("'|' or end of target"));
    }
    Ok(expr)
}

/// Checks that `target` follows graphite-web's target grammar (calls nested at most 64 deep),
/// e.g. to validate dashboards ahead of time. Function names and arguments are checked only
/// when the target is evaluated.
pub fn check_target(target: &str) -> Result<(), ParseError> {
    parse_target(target, 64).map(|_| ())
}

/// The first path expression inside a (function-wrapped) series name, following first
/// arguments inward; graphite-web's `_getFirstPathExpression`, used by `aliasByNode` & co.
pub(crate) fn first_path_expression(name: &str) -> Option<String> {
    let mut p = Parser {
        s: name.as_bytes(),
        src: name,
        pos: 0,
        depth: 0,
        max_depth: 256,
    };
    p.ws();
    let mut expr = p.expression().ok()?;
    loop {
        match expr {
            Expr::Path(path) => return Some(path),
            Expr::Call(mut call) => {
                if call.args.is_empty() {
                    return None;
                }
                match call.args.swap_remove(0) {
                    Arg::Expr(e) => expr = e,
                    _ => return None,
                }
            }
            Expr::Template(t) => expr = t.expr,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
    depth: usize,
    max_depth: usize,
}

const SYMBOLS: &[u8] = b"(){},.'\"\\|";

fn is_path_byte(b: u8) -> bool {
    (b > 127 || (33..=126).contains(&b)) && !SYMBOLS.contains(&b)
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'a> Parser<'a> {
    fn err(&self, expected: &'static str) -> ParseError {
        ParseError {
            offset: self.pos,
            expected,
            found: self.src[self.pos..].chars().next(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn ws_at(&self, mut i: usize) -> usize {
        while matches!(self.s.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    }

    fn ident_end(&self, start: usize) -> Option<usize> {
        if !self.s.get(start).is_some_and(|&b| is_ident_start(b)) {
            return None;
        }
        let mut i = start + 1;
        while self.s.get(i).is_some_and(|&b| is_ident(b)) {
            i += 1;
        }
        Some(i)
    }

    /// expression := (template | call | path) ( '|' call )*
    fn expression(&mut self) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(self.err("a less deeply nested expression"));
        }
        let mut expr = self.primary()?;
        loop {
            let save = self.pos;
            self.ws();
            if self.peek() != Some(b'|') {
                self.pos = save;
                break;
            }
            self.pos += 1;
            self.ws();
            let Some(end) = self.ident_end(self.pos) else {
                return Err(self.err("a function call after '|'"));
            };
            let name = self.src[self.pos..end].to_owned();
            self.pos = end;
            self.ws();
            if self.peek() != Some(b'(') {
                return Err(self.err("'(' after the function name"));
            }
            let mut call = self.call_rest(name)?;
            call.args.insert(0, Arg::Expr(expr));
            expr = Expr::Call(call);
        }
        self.depth -= 1;
        Ok(expr)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        if let Some(end) = self.ident_end(self.pos) {
            let after = self.ws_at(end);
            if self.s.get(after) == Some(&b'(') {
                let name = self.src[self.pos..end].to_owned();
                self.pos = after;
                if name == "template" {
                    return self.template();
                }
                return Ok(Expr::Call(self.call_rest(name)?));
            }
        }
        self.path().map(Expr::Path)
    }

    /// At '(' of a call: parses arguments through the closing ')'.
    fn call_rest(&mut self, name: String) -> Result<Call, ParseError> {
        let (args, kwargs) = self.arguments(false)?;
        Ok(Call { name, args, kwargs })
    }

    fn template(&mut self) -> Result<Expr, ParseError> {
        // At '('.
        self.pos += 1;
        self.ws();
        let inner = self.primary()?;
        self.ws();
        let (args, kwargs) = match self.peek() {
            Some(b')') => {
                self.pos += 1;
                (Vec::new(), Vec::new())
            }
            Some(b',') => {
                self.pos += 1;
                self.arguments_after_open(true)?
            }
            _ => return Err(self.err("',' or ')'")),
        };
        Ok(Expr::Template(Box::new(Template {
            expr: inner,
            args,
            kwargs,
        })))
    }

    /// At '(' of an argument list.
    fn arguments(&mut self, literal_only: bool) -> Result<ArgList, ParseError> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok((Vec::new(), Vec::new()));
        }
        self.arguments_after_open(literal_only)
    }

    fn arguments_after_open(&mut self, literal_only: bool) -> Result<ArgList, ParseError> {
        let mut args = Vec::new();
        let mut kwargs: Vec<(String, Arg)> = Vec::new();
        loop {
            self.ws();
            let kw = self.ident_end(self.pos).and_then(|end| {
                let eq = self.ws_at(end);
                (self.s.get(eq) == Some(&b'=')).then_some((end, eq))
            });
            if let Some((end, eq)) = kw {
                let key = self.src[self.pos..end].to_owned();
                self.pos = eq + 1;
                self.ws();
                let value = self.arg(literal_only)?;
                kwargs.push((key, value));
            } else {
                if !kwargs.is_empty() {
                    return Err(self.err("a keyword argument (name=value) after keyword arguments"));
                }
                args.push(self.arg(literal_only)?);
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok((args, kwargs));
                }
                _ => return Err(self.err("',' or ')'")),
            }
        }
    }

    /// True when only whitespace stands between `i` and a ',' / ')' / the end.
    fn at_arg_end(&self, i: usize) -> bool {
        let j = self.ws_at(i);
        matches!(self.s.get(j), None | Some(b',' | b')'))
    }

    fn arg(&mut self, literal_only: bool) -> Result<Arg, ParseError> {
        let start = self.pos;
        if let Some(end) = self
            .ident_end(start)
            .filter(|&e| !literal_only && self.at_arg_end(e))
        {
            let word = self.src[start..end].to_ascii_lowercase();
            let lit = match word.as_str() {
                "true" => Some(Arg::Bool(true)),
                "false" => Some(Arg::Bool(false)),
                "none" => Some(Arg::None),
                "inf" => Some(Arg::Inf),
                _ => None,
            };
            if let Some(lit) = lit {
                self.pos = end;
                return Ok(lit);
            }
        }
        if let Some(n) = self.number() {
            return Ok(n);
        }
        if matches!(self.peek(), Some(b'\'' | b'"')) {
            return self.string().map(Arg::Str);
        }
        if literal_only {
            return Err(self.err("a number or a quoted string"));
        }
        if self.pos >= self.s.len() || matches!(self.peek(), Some(b',' | b')')) {
            return Err(self.err("an argument"));
        }
        self.expression().map(Arg::Expr)
    }

    /// number := -?\d+(\.\d+)?([eE]-?\d+)? followed by ',' ')' or the end.
    fn number(&mut self) -> Option<Arg> {
        let s = self.s;
        let mut i = self.pos;
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits_start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == digits_start {
            return None;
        }
        let mut is_float = false;
        if s.get(i) == Some(&b'.') && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            is_float = true;
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if s.get(j) == Some(&b'-') {
                j += 1;
            }
            let exp_start = j;
            while s.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            if j > exp_start {
                i = j;
                is_float = true;
            }
        }
        if !self.at_arg_end(i) {
            return None;
        }
        let text = &self.src[self.pos..i];
        let arg = if is_float {
            Arg::Float(text.parse().ok()?)
        } else {
            match text.parse::<i64>() {
                Ok(v) => Arg::Int(v),
                Err(_) => Arg::Float(text.parse().ok()?),
            }
        };
        self.pos = i;
        Some(arg)
    }

    /// A quoted string: backslash escapes and doubled quotes are skipped over, not decoded.
    fn string(&mut self) -> Result<String, ParseError> {
        let quote = self.s[self.pos];
        let start = self.pos;
        let mut i = self.pos + 1;
        loop {
            match self.s.get(i) {
                None | Some(b'\n' | b'\r') => {
                    self.pos = i;
                    return Err(self.err("a closing quote"));
                }
                Some(b'\\') if i + 1 < self.s.len() => i += 2,
                Some(&b) if b == quote => {
                    if self.s.get(i + 1) == Some(&quote) {
                        i += 2;
                    } else {
                        break;
                    }
                }
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(self.src[start + 1..i].to_owned())
    }

    /// path := element ('.' element)*
    fn path(&mut self) -> Result<String, ParseError> {
        let mut out = String::new();
        loop {
            self.element(&mut out)?;
            if self.peek() == Some(b'.') {
                out.push('.');
                self.pos += 1;
            } else {
                return Ok(out);
            }
        }
    }

    /// element := (chars | '{' chars (',' chars)* '}')+
    fn element(&mut self, out: &mut String) -> Result<(), ParseError> {
        let before = out.len();
        loop {
            match self.peek() {
                Some(b'{') => {
                    out.push('{');
                    self.pos += 1;
                    loop {
                        if !self.chars(out) {
                            return Err(self.err("a name inside '{...}'"));
                        }
                        match self.peek() {
                            Some(b',') => {
                                out.push(',');
                                self.pos += 1;
                            }
                            Some(b'}') => {
                                out.push('}');
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.err("',' or '}'")),
                        }
                    }
                }
                _ => {
                    if !self.chars(out) {
                        break;
                    }
                }
            }
        }
        if out.len() == before {
            return Err(self.err("a metric path or function call"));
        }
        Ok(())
    }

    /// chars := (path char | '\' symbol)+ ; returns false when nothing was read.
    fn chars(&mut self, out: &mut String) -> bool {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b'\\') => match self.s.get(self.pos + 1) {
                    Some(&b) if SYMBOLS.contains(&b) || b == b'=' => {
                        out.push(b as char);
                        self.pos += 2;
                    }
                    _ => break,
                },
                Some(b) if is_path_byte(b) => {
                    let ch_len = self.src[self.pos..]
                        .chars()
                        .next()
                        .map_or(1, char::len_utf8);
                    out.push_str(&self.src[self.pos..self.pos + ch_len]);
                    self.pos += ch_len;
                }
                _ => break,
            }
        }
        self.pos > start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse_target(s, 64).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn path(s: &str) -> Arg {
        Arg::Expr(Expr::Path(s.to_owned()))
    }

    fn call(name: &str, args: Vec<Arg>) -> Expr {
        Expr::Call(Call {
            name: name.to_owned(),
            args,
            kwargs: vec![],
        })
    }

    #[test]
    fn plain_and_glob_paths() {
        assert_eq!(p("a.b.c"), Expr::Path("a.b.c".into()));
        assert_eq!(
            p("test.web*.cpu.{user,system}"),
            Expr::Path("test.web*.cpu.{user,system}".into())
        );
        assert_eq!(p("a.[0-9]?.b"), Expr::Path("a.[0-9]?.b".into()));
        assert_eq!(
            p("disk.used;dc=east;host=web1"),
            Expr::Path("disk.used;dc=east;host=web1".into())
        );
        assert_eq!(p("123.foo"), Expr::Path("123.foo".into()));
        assert_eq!(p(r"a.b\(x\)"), Expr::Path("a.b(x)".into()));
        assert_eq!(p("  a.b  "), Expr::Path("a.b".into()));
        assert_eq!(p("a.{web*,db?}x.c"), Expr::Path("a.{web*,db?}x.c".into()));
    }

    #[test]
    fn nested_calls_and_literals() {
        assert_eq!(
            p("sumSeries( a.b , c.d )"),
            call("sumSeries", vec![path("a.b"), path("c.d")])
        );
        assert_eq!(
            p("f(a,1,-2.5,1e3,2.5E-4,true,FALSE,None,inf,'x',\"y\")"),
            call(
                "f",
                vec![
                    path("a"),
                    Arg::Int(1),
                    Arg::Float(-2.5),
                    Arg::Float(1000.0),
                    Arg::Float(2.5e-4),
                    Arg::Bool(true),
                    Arg::Bool(false),
                    Arg::None,
                    Arg::Inf,
                    Arg::Str("x".into()),
                    Arg::Str("y".into()),
                ]
            )
        );
        assert_eq!(
            p("scale(a.b, 5min)"),
            call("scale", vec![path("a.b"), path("5min")])
        );
        assert_eq!(p("f(trueish)"), call("f", vec![path("trueish")]));
        assert_eq!(p("f()"), call("f", vec![]));
    }

    #[test]
    fn keyword_arguments() {
        let Expr::Call(c) = p("movingAverage(a.b, windowSize='5min', xFilesFactor=0.5)") else {
            panic!()
        };
        assert_eq!(c.args, vec![path("a.b")]);
        assert_eq!(
            c.kwargs,
            vec![
                ("windowSize".to_owned(), Arg::Str("5min".into())),
                ("xFilesFactor".to_owned(), Arg::Float(0.5))
            ]
        );
    }

    #[test]
    fn grafana_alias_sub_wrapper() {
        let Expr::Call(c) = p(r#"aliasSub(sumSeries(a.*), "(^.*$)", "\1 A")"#) else {
            panic!()
        };
        assert_eq!(c.name, "aliasSub");
        assert_eq!(c.args[1], Arg::Str("(^.*$)".into()));
        assert_eq!(c.args[2], Arg::Str(r"\1 A".into()));
    }

    #[test]
    fn strings_keep_escapes() {
        assert_eq!(p(r"f('a\'b')"), call("f", vec![Arg::Str(r"a\'b".into())]));
        assert_eq!(p("f('a''b')"), call("f", vec![Arg::Str("a''b".into())]));
    }

    #[test]
    fn pipes_fold_into_calls() {
        assert_eq!(
            p("a.b | sumSeries() | alias('x')"),
            call(
                "alias",
                vec![
                    Arg::Expr(call("sumSeries", vec![path("a.b")])),
                    Arg::Str("x".into())
                ]
            )
        );
    }

    #[test]
    fn templates() {
        let Expr::Template(t) = p("template(a.$host.cpu, host='web1')") else {
            panic!()
        };
        assert_eq!(t.expr, Expr::Path("a.$host.cpu".into()));
        assert_eq!(t.kwargs, vec![("host".to_owned(), Arg::Str("web1".into()))]);
        let Expr::Template(t) = p("template(sumSeries(a.$1), 'x', 2)") else {
            panic!()
        };
        assert_eq!(t.args, vec![Arg::Str("x".into()), Arg::Int(2)]);
        assert!(parse_target("template(a.b, c.d)", 64).is_err());
    }

    #[test]
    fn syntax_errors_name_position_and_expectation() {
        let e = parse_target("sumSeries(a.b", 64).unwrap_err();
        assert_eq!((e.offset, e.expected, e.found), (13, "',' or ')'", None));
        let e = parse_target("alias(a.b,)", 64).unwrap_err();
        assert_eq!((e.offset, e.expected), (10, "an argument"));
        let e = parse_target("a.b extra", 64).unwrap_err();
        assert_eq!(
            (e.offset, e.expected, e.found),
            (4, "'|' or end of target", Some('e'))
        );
        let e = parse_target(")", 64).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(parse_target("a..b", 64).is_err());
        assert!(parse_target("", 64).is_err());
        assert!(parse_target("f('abc)", 64).is_err());
        assert!(parse_target("f(a=1, b)", 64).is_err());
        assert!(parse_target("a.{b,}", 64).is_err());
        assert_eq!(
            parse_target("sumSeries(a.b", 64).unwrap_err().to_string(),
            "syntax error at offset 13: expected ',' or ')', found end of target"
        );
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "f(".repeat(100) + "a" + &")".repeat(100);
        assert!(parse_target(&deep, 64).is_err());
        assert!(parse_target(&deep, 200).is_ok());
    }

    #[test]
    fn first_path_follows_first_arguments() {
        assert_eq!(
            first_path_expression("scale(a.b.c,2)").as_deref(),
            Some("a.b.c")
        );
        assert_eq!(first_path_expression("a.b").as_deref(), Some("a.b"));
        assert_eq!(first_path_expression("constantLine(5)"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_target(&s, 64);
            let _ = first_path_expression(&s);
        }

        #[test]
        fn never_panics_on_grammar_soup(s in "[a-c(),.'\"{}|=0-9 \\\\*-]{0,30}") {
            let _ = parse_target(&s, 64);
        }
    }
}
