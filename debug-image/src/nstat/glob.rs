//! Shell-glob patterns for counter names, matching as iproute2's nstat
//! matches them: `fnmatch(pattern, name, 0)`.
//!
//! Supported: `*` (any run of characters, including none), `?` (one
//! character), bracket expressions `[abc]`, `[a-z]`, `[!x]`/`[^x]`,
//! `[[:digit:]]` and the other POSIX classes, and `\x` for a literal `x`.
//! With flags 0 no character is special to fnmatch, so `*` also matches `/`
//! and a leading `.`.
//!
//! One deliberate difference: where fnmatch quietly treats a broken pattern
//! (an unclosed `[`, a trailing `\`, an unknown `[:class:]`) as one that
//! matches nothing, we reject it with an error saying what is wrong. Counter
//! names are plain `[A-Za-z0-9]` words, so such a pattern can never select a
//! counter, and an empty listing would hide the typo.

use std::fmt;

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    AnyOne,
    /// `*`
    AnyRun,
    /// `[...]`
    Bracket {
        negated: bool,
        items: Vec<BracketItem>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum BracketItem {
    Char(char),
    Range(char, char),
    Class(CharClass),
}

/// The POSIX character classes of `[[:name:]]`, ASCII only (counter names
/// are ASCII).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CharClass {
    Alnum,
    Alpha,
    Blank,
    Cntrl,
    Digit,
    Graph,
    Lower,
    Print,
    Punct,
    Space,
    Upper,
    Xdigit,
}

impl CharClass {
    fn from_name(name: &str) -> Option<CharClass> {
        Some(match name {
            "alnum" => CharClass::Alnum,
            "alpha" => CharClass::Alpha,
            "blank" => CharClass::Blank,
            "cntrl" => CharClass::Cntrl,
            "digit" => CharClass::Digit,
            "graph" => CharClass::Graph,
            "lower" => CharClass::Lower,
            "print" => CharClass::Print,
            "punct" => CharClass::Punct,
            "space" => CharClass::Space,
            "upper" => CharClass::Upper,
            "xdigit" => CharClass::Xdigit,
            _ => return None,
        })
    }

    fn contains(self, c: char) -> bool {
        match self {
            CharClass::Alnum => c.is_ascii_alphanumeric(),
            CharClass::Alpha => c.is_ascii_alphabetic(),
            CharClass::Blank => c == ' ' || c == '\t',
            CharClass::Cntrl => c.is_ascii_control(),
            CharClass::Digit => c.is_ascii_digit(),
            CharClass::Graph => c.is_ascii_graphic(),
            CharClass::Lower => c.is_ascii_lowercase(),
            CharClass::Print => c.is_ascii_graphic() || c == ' ',
            CharClass::Punct => c.is_ascii_punctuation(),
            CharClass::Space => c.is_ascii_whitespace() || c == '\x0b',
            CharClass::Upper => c.is_ascii_uppercase(),
            CharClass::Xdigit => c.is_ascii_hexdigit(),
        }
    }
}

/// Why a pattern was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobError {
    pub pattern: String,
    pub reason: String,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad pattern \"{}\": {}", self.pattern, self.reason)
    }
}

impl Glob {
    /// Compiles `pattern`, rejecting the broken forms described in the
    /// module doc.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let fail = |reason: &str| GlobError {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        if pattern.is_empty() {
            return Err(fail("an empty pattern matches no counter"));
        }
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    // Consecutive stars mean the same as one.
                    if tokens.last() != Some(&Token::AnyRun) {
                        tokens.push(Token::AnyRun);
                    }
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::AnyOne);
                    i += 1;
                }
                '\\' => {
                    let Some(&c) = chars.get(i + 1) else {
                        return Err(fail("it ends with a lone '\\'"));
                    };
                    tokens.push(Token::Literal(c));
                    i += 2;
                }
                '[' => {
                    let (token, next) = parse_bracket(&chars, i).map_err(|r| fail(&r))?;
                    tokens.push(token);
                    i = next;
                }
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        Ok(Glob { tokens })
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = name.chars().collect();
        // Greedy matching with one backtrack point, the last `*`: enough for
        // globs, whose only variable-length element is `*`, and linear in
        // practice for counter names.
        let (mut t, mut p) = (0usize, 0usize);
        let mut backtrack: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::AnyRun) => {
                    backtrack = Some((p, t));
                    p += 1;
                }
                Some(token) if token_matches(token, text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match backtrack {
                    Some((star, from)) => {
                        // Let the last `*` swallow one more character.
                        p = star + 1;
                        t = from + 1;
                        backtrack = Some((star, from + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|t| *t == Token::AnyRun)
    }
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyOne => true,
        Token::AnyRun => true,
        Token::Bracket { negated, items } => {
            let hit = items.iter().any(|item| match *item {
                BracketItem::Char(x) => x == c,
                BracketItem::Range(lo, hi) => lo <= c && c <= hi,
                BracketItem::Class(class) => class.contains(c),
            });
            hit != *negated
        }
    }
}

/// Parses the bracket expression that opens at `chars[start] == '['`;
/// returns the token and the index just past its `]`.
fn parse_bracket(chars: &[char], start: usize) -> Result<(Token, usize), String> {
    let unclosed = || "'[' is never closed by ']' (write \\[ for a literal '[')".to_owned();
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(unclosed());
        };
        // A `]` right after `[` or `[!` is a member, not the end.
        if c == ']' && !first {
            return Ok((Token::Bracket { negated, items }, i + 1));
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let name_start = i + 2;
            let Some(len) = chars[name_start..].windows(2).position(|w| w == [':', ']']) else {
                return Err(unclosed());
            };
            let name: String = chars[name_start..name_start + len].iter().collect();
            let class = CharClass::from_name(&name)
                .ok_or_else(|| format!("unknown character class [:{name}:]"))?;
            items.push(BracketItem::Class(class));
            i = name_start + len + 2;
            continue;
        }
        let (low, after_low) = bracket_char(chars, i).ok_or_else(unclosed)?;
        // `a-z` is a range unless the `-` is the last member (`[a-]`).
        if chars.get(after_low) == Some(&'-') && chars.get(after_low + 1).is_some_and(|&n| n != ']')
        {
            let (high, after_high) = bracket_char(chars, after_low + 1).ok_or_else(unclosed)?;
            if high < low {
                return Err(format!("range {low}-{high} runs backwards"));
            }
            items.push(BracketItem::Range(low, high));
            i = after_high;
        } else {
            items.push(BracketItem::Char(low));
            i = after_low;
        }
    }
}

/// One member character of a bracket expression at `i`, honouring `\`
/// escapes; returns it and the index after it.
fn bracket_char(chars: &[char], i: usize) -> Option<(char, usize)> {
    match chars.get(i)? {
        '\\' => chars.get(i + 1).map(|&c| (c, i + 2)),
        &c => Some((c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        Glob::new(pattern).unwrap().matches(name)
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(m("TcpExt*", "TcpExtListenOverflows"));
        assert!(m("*Overflows", "TcpExtListenOverflows"));
        assert!(m("*Listen*", "TcpExtListenDrops"));
        assert!(m("Ip*Octets", "Ip6InOctets"));
        assert!(m("Ip*Octets", "IpExtInOctets"));
        assert!(!m("Ip*Octets", "IpExtInOctetsX"));
        assert!(m("*", ""));
        assert!(m("**a**", "a"));
        assert!(m("Udp?InErrors", "Udp6InErrors"));
        assert!(!m("Udp?InErrors", "UdpInErrors"));
        assert!(m("IpInReceives", "IpInReceives"));
        assert!(!m("IpInReceives", "IpInReceivesX"));
        assert!(
            !m("ipinreceives", "IpInReceives"),
            "fnmatch is case-sensitive"
        );
        // Needs the backtrack to move past an early partial match.
        assert!(m("*aab", "aaab"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn brackets() {
        assert!(m("Udp[6L]*", "Udp6InErrors"));
        assert!(m("Udp[6L]*", "UdpLiteInErrors"));
        assert!(!m("Udp[6L]*", "UdpInErrors"));
        assert!(m("Udp[!6]*", "UdpInErrors"));
        assert!(m("Udp[^6]*", "UdpInErrors"));
        assert!(!m("Udp[!6]*", "Udp6InErrors"));
        assert!(m("IcmpMsgInType[0-9]", "IcmpMsgInType3"));
        assert!(!m("IcmpMsgInType[0-9]", "IcmpMsgInType13"));
        assert!(m("IcmpMsgInType[[:digit:]]*", "IcmpMsgInType13"));
        assert!(m("[]]", "]"));
        assert!(m("[!]]", "a"));
        assert!(m("[a-]", "-"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("[\\]]", "]"));
    }

    #[test]
    fn broken_patterns_are_rejected_with_the_reason() {
        let err = |p: &str| Glob::new(p).unwrap_err().to_string();
        assert_eq!(
            err("Tcp[Ext"),
            "bad pattern \"Tcp[Ext\": '[' is never closed by ']' (write \\[ for a literal '[')"
        );
        assert!(err("Tcp\\").contains("lone '\\'"));
        assert!(err("[[:word:]]").contains("unknown character class [:word:]"));
        assert!(err("[z-a]").contains("runs backwards"));
        assert!(err("").contains("empty pattern"));
        assert!(err("[!").contains("never closed"));
    }
}
