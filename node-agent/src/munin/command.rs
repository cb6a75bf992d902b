//! munin-node's command dispatch (spec §2.3), as a pure function of one line.
//!
//! Patterns are tried in munin-node's order, case-insensitive, anchored only at the start:
//! `fetchload` is `fetch load`, `quitter` is `quit`, `LIST` is `list`.

/// One parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    /// `list [node]`: the node name, if one was given.
    List(Option<&'a str>),
    /// `cap <words>`.
    Cap(Vec<&'a str>),
    /// `quit`, or any line starting with `.`.
    Quit,
    Version,
    Nodes,
    /// `fetch <plugin>` (the name may be empty).
    Fetch(&'a str),
    /// `config <plugin>` (the name may be empty).
    Config(&'a str),
    /// Anything else, including an empty line, `spoolfetch` (no spool) and `starttls`
    /// (answered as unknown until TLS exists, spec §2.9).
    Unknown,
}

/// Perl's `\s`: space, \t, \n, \v, \f, \r.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn strip_prefix_ci<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let head = line.get(..word.len())?;
    head.eq_ignore_ascii_case(word).then(|| &line[word.len()..])
}

/// `\s?(\S*)`: at most one whitespace character, then the next run of non-space characters.
fn one_arg(rest: &str) -> &str {
    let rest = match rest.chars().next() {
        Some(c) if is_space(c) => &rest[c.len_utf8()..],
        _ => rest,
    };
    let end = rest.find(is_space).unwrap_or(rest.len());
    &rest[..end]
}

/// Parses one request line (the trailing LF already removed; a CR may remain).
pub(crate) fn parse(line: &str) -> Command<'_> {
    if let Some(rest) = strip_prefix_ci(line, "list") {
        // list\s*([0-9a-zA-Z.-]+)?
        let rest = rest.trim_start_matches(is_space);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        return Command::List((!name.is_empty()).then_some(name));
    }
    if let Some(rest) = strip_prefix_ci(line, "cap") {
        return Command::Cap(rest.split(is_space).filter(|w| !w.is_empty()).collect());
    }
    if strip_prefix_ci(line, "quit").is_some() || line.starts_with('.') {
        return Command::Quit;
    }
    if strip_prefix_ci(line, "version").is_some() {
        return Command::Version;
    }
    if strip_prefix_ci(line, "nodes").is_some() {
        return Command::Nodes;
    }
    if let Some(rest) = strip_prefix_ci(line, "fetch") {
        return Command::Fetch(one_arg(rest));
    }
    if let Some(rest) = strip_prefix_ci(line, "config") {
        return Command::Config(one_arg(rest));
    }
    Command::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_t29_quirks() {
        assert_eq!(parse("FETCH load"), Command::Fetch("load"));
        assert_eq!(parse("fetchload"), Command::Fetch("load"));
        assert_eq!(parse("fetch  load"), Command::Fetch(""));
        assert_eq!(parse("fetch load\r"), Command::Fetch("load"));
        assert_eq!(parse("fetch load extra words"), Command::Fetch("load"));
        assert_eq!(parse("fetch ../load"), Command::Fetch("../load"));
        assert_eq!(parse("quitter"), Command::Quit);
    }

    #[test]
    fn transcript_t26_t27_t28() {
        assert_eq!(parse("fetch"), Command::Fetch(""));
        assert_eq!(parse("config"), Command::Config(""));
        assert_eq!(parse("help"), Command::Unknown);
        assert_eq!(parse(""), Command::Unknown);
        assert_eq!(parse("spoolfetch 0"), Command::Unknown);
        assert_eq!(parse("hello world"), Command::Unknown);
        assert_eq!(parse("starttls"), Command::Unknown);
        assert_eq!(parse("CAP multigraph"), Command::Cap(vec!["multigraph"]));
        assert_eq!(parse("LIST"), Command::List(None));
        assert_eq!(parse("Version"), Command::Version);
        assert_eq!(parse("NODES"), Command::Nodes);
        assert_eq!(parse("QUIT"), Command::Quit);
        assert_eq!(parse("."), Command::Quit);
        assert_eq!(parse(".anything"), Command::Quit);
    }

    #[test]
    fn list_and_cap_arguments() {
        assert_eq!(parse("list vm"), Command::List(Some("vm")));
        assert_eq!(
            parse("list no.such.node"),
            Command::List(Some("no.such.node"))
        );
        assert_eq!(parse("list vm\r"), Command::List(Some("vm")));
        assert_eq!(parse("listvm"), Command::List(Some("vm")));
        assert_eq!(parse("list   "), Command::List(None));
        assert_eq!(parse("list a!b"), Command::List(Some("a")));
        assert_eq!(
            parse("cap multigraph dirtyconfig\r"),
            Command::Cap(vec!["multigraph", "dirtyconfig"])
        );
        assert_eq!(parse("cap"), Command::Cap(vec![]));
        assert_eq!(parse("capfoo bar"), Command::Cap(vec!["foo", "bar"]));
        // "quit " with a trailing space, as Munin's master sends it
        assert_eq!(parse("quit "), Command::Quit);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in "\\PC*") {
            let _ = parse(&line);
        }
    }
}
