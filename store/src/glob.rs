//! Graphite's per-node glob patterns: `*`, `?`, `[a-z]`/`[!...]` (fnmatch semantics) and
//! `{a,b}` alternatives, which may nest and hold other wildcards (render-api spec section 9).

/// Expanding braces is exponential in the worst case; beyond this many alternatives a pattern
/// is treated as matching nothing rather than exhausting memory.
const MAX_ALTERNATIVES: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// `*`
    Any,
    /// `?`
    One,
    /// `[...]`: inclusive ranges, negated with `!`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A Graphite path pattern (`servers.web*.cpu.{user,system}`), matched node by node: a node
/// pattern never matches across a dot.
#[derive(Debug, Clone)]
pub struct Glob {
    nodes: Vec<NodePattern>,
}

impl Glob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Glob {
        Glob {
            nodes: pattern.split('.').map(NodePattern::new).collect(),
        }
    }

    /// Whether the dotted `path` matches, node for node.
    pub fn matches(&self, path: &str) -> bool {
        let mut nodes = path.split('.');
        self.nodes
            .iter()
            .all(|p| nodes.next().is_some_and(|n| p.matches(n)))
            && nodes.next().is_none()
    }

    /// The node patterns, for walking a tree.
    pub(crate) fn nodes(&self) -> &[NodePattern] {
        &self.nodes
    }
}

/// One node of a glob pattern.
#[derive(Debug, Clone)]
pub(crate) struct NodePattern {
    literal: Option<String>,
    alternatives: Vec<Vec<Token>>,
}

impl NodePattern {
    pub(crate) fn new(text: &str) -> NodePattern {
        if !text.contains(['*', '?', '[', '{']) {
            return NodePattern {
                literal: Some(text.to_owned()),
                alternatives: Vec::new(),
            };
        }
        let mut expanded = Vec::new();
        expand_braces(text, &mut expanded);
        if expanded.len() > MAX_ALTERNATIVES {
            expanded.clear();
        }
        expanded.sort();
        expanded.dedup();
        NodePattern {
            literal: None,
            alternatives: expanded.iter().map(|a| tokenize(a)).collect(),
        }
    }

    /// The node name when the pattern has no wildcard (looked up directly).
    pub(crate) fn literal(&self) -> Option<&str> {
        self.literal.as_deref()
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        match &self.literal {
            Some(l) => l == name,
            None => {
                let chars: Vec<char> = name.chars().collect();
                self.alternatives.iter().any(|a| matches(a, &chars))
            }
        }
    }
}

/// Expands the first `{...}` group (recursively), appending every combination to `out`.
fn expand_braces(text: &str, out: &mut Vec<String>) {
    if out.len() > MAX_ALTERNATIVES {
        return;
    }
    let Some(open) = text.find('{') else {
        out.push(text.to_owned());
        return;
    };
    // Find the matching close brace and the top-level commas inside.
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut close = None;
    for (i, c) in text[open..].char_indices() {
        let at = open + i;
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(at);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(at),
            _ => {}
        }
    }
    let Some(close) = close else {
        // An unbalanced brace is a literal character.
        out.push(text.to_owned());
        return;
    };
    let (prefix, suffix) = (&text[..open], &text[close + 1..]);
    let mut start = open + 1;
    for end in commas.into_iter().chain(std::iter::once(close)) {
        let alternative = format!("{prefix}{}{suffix}", &text[start..end]);
        expand_braces(&alternative, out);
        start = end + 1;
    }
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if tokens.last() != Some(&Token::Any) {
                    tokens.push(Token::Any);
                }
            }
            '?' => tokens.push(Token::One),
            '[' => match class(&chars[i + 1..]) {
                Some((token, used)) => {
                    tokens.push(token);
                    i += used;
                }
                None => tokens.push(Token::Char('[')),
            },
            c => tokens.push(Token::Char(c)),
        }
        i += 1;
    }
    tokens
}

/// Parses a class after its `[`; returns the token and the characters consumed (through `]`),
/// or `None` when there is no closing bracket (then `[` is literal, as in fnmatch).
fn class(chars: &[char]) -> Option<(Token, usize)> {
    let mut i = 0;
    let negated = chars.first() == Some(&'!');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        if i + 2 < chars.len() && chars[i + 1] == '-' && chars[i + 2] != ']' {
            ranges.push((c, chars[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    None
}

/// Glob match with backtracking to the last `*` only: linear in practice.
fn matches(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match tokens.get(t) {
            Some(Token::Any) => {
                star = Some((t, n));
                t += 1;
                continue;
            }
            Some(Token::One) => true,
            Some(Token::Char(c)) => *c == name[n],
            Some(Token::Class { negated, ranges }) => {
                let inside = ranges
                    .iter()
                    .any(|&(lo, hi)| lo <= name[n] && name[n] <= hi);
                inside != *negated
            }
            None => false,
        };
        if step {
            t += 1;
            n += 1;
        } else if let Some((st, sn)) = star {
            t = st + 1;
            n = sn + 1;
            star = Some((st, sn + 1));
        } else {
            return false;
        }
    }
    tokens[t..].iter().all(|x| *x == Token::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        NodePattern::new(pattern).matches(name)
    }

    #[test]
    fn fnmatch_semantics() {
        assert!(m("web*", "web"));
        assert!(m("web*", "web12"));
        assert!(!m("web*", "db"));
        assert!(m("*", ""));
        assert!(m("w?b", "web"));
        assert!(!m("w?b", "wb"));
        assert!(m("*b*c", "abxbc"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[a-c]x", "dx"));
        assert!(m("[!a-c]x", "dx"));
        assert!(m("[]]", "]"));
        assert!(m("[ab", "[ab"));
        assert!(m("a-[0-9][0-9]", "a-42"));
        assert!(!m("Web", "web"));
    }

    #[test]
    fn braces() {
        assert!(m("{a,b}", "a"));
        assert!(m("{a,b}", "b"));
        assert!(!m("{a,b}", "c"));
        assert!(m("{web*,db?}", "web12"));
        assert!(m("{web*,db?}", "db1"));
        assert!(!m("{web*,db?}", "db12"));
        assert!(m("x{a,{b,c}}y", "xcy"));
        assert!(m("{a,b}{1,2}", "b2"));
        assert!(m("{a,b", "{a,b"));
        assert!(m("{,x}y", "y"));
    }

    #[test]
    fn whole_paths() {
        let g = Glob::new("a.{b*,c}.d");
        assert!(g.matches("a.bee.d"));
        assert!(g.matches("a.c.d"));
        assert!(!g.matches("a.c"));
        assert!(!g.matches("a.c.d.e"));
        assert!(!Glob::new("a.*").matches("a.b.c"));
        assert!(Glob::new("*").matches("x"));
    }

    #[test]
    fn literal_patterns_are_direct() {
        assert_eq!(NodePattern::new("cpu").literal(), Some("cpu"));
        assert_eq!(NodePattern::new("c*").literal(), None);
    }

    #[test]
    fn explosive_braces_match_nothing_instead_of_eating_memory() {
        let pattern = "{a,b,c,d}".repeat(8);
        assert!(!m(&pattern, "abcdabcd"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(pattern in "[a-c*?\\[\\]{},!-]{0,12}", name in "[a-c\\]\\[-]{0,8}") {
            let _ = m(&pattern, &name);
        }
    }
}
