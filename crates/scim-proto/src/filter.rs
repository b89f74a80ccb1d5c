//! Parser for SCIM filters (RFC 7644 §3.4.2.2), plus the two forms Entra sends
//! that the RFC grammar lacks: a value path followed by a sub-attribute
//! comparison (`emails[type eq "work"].value eq "x"`) and unquoted legacy
//! values (`externalId eq jyoung`).
//!
//! A tokenizer turns the text into brackets, JSON strings and bare words; a
//! recursive-descent parser builds the [`Filter`] tree. Input size, nesting
//! depth and the number of comparisons are capped so that a hostile filter
//! costs bounded time and stack. The same parser reads the bracket filter of
//! PATCH paths (see [`crate::path`]).

use std::collections::VecDeque;
use std::fmt::{self, Write};
use std::str::FromStr;

use serde_json::Number;

use crate::ast::{AttrPath, AttrTest, CompValue, CompareOp, Filter};
use crate::error::{ScimError, ScimResult};
use crate::schema::ENTERPRISE_USER_SCHEMA;

/// Longest filter (or PATCH path) accepted, in bytes. Entra's filters are a
/// few hundred bytes at most; the cap bounds tokenizer work.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of `(…)`, `not (…)` and `[…]`. Bounds parser recursion,
/// so no input can exhaust the stack.
pub const MAX_DEPTH: usize = 16;
/// Most comparisons (`eq`, `pr`, …) in one filter. Bounds evaluation cost
/// per resource.
pub const MAX_TERMS: usize = 64;

/// Parses a `filter` query parameter (already URL-decoded).
pub fn parse_filter(s: &str) -> ScimResult<Filter> {
    let mut p = Parser::new(s, Grammar::Filter)?;
    let filter = p.or_expr(false)?;
    p.expect_end()?;
    Ok(filter)
}

impl FromStr for Filter {
    type Err = ScimError;

    fn from_str(s: &str) -> ScimResult<Self> {
        parse_filter(s)
    }
}

impl Filter {
    /// The operands of the top-level chain of `and`s, left to right (the
    /// filter itself when it is not an `and`). Storage uses this to pick one
    /// indexed equality term (`userName eq`, `externalId eq`, …) and then
    /// checks the whole filter on the candidates.
    pub fn conjuncts(&self) -> Vec<&Filter> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(f) = stack.pop() {
            match f {
                Filter::And(l, r) => {
                    stack.push(r);
                    stack.push(l);
                }
                other => out.push(other),
            }
        }
        out
    }
}

/// Canonical text: lowercase operators, JSON-quoted strings, and parentheses
/// only where needed, so that the output parses back to the same tree.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Attr { path, test } => {
                write!(f, "{path} ")?;
                write_test(f, test)
            }
            Filter::ValuePath { path, filter, sub } => {
                write!(f, "{path}[{filter}]")?;
                if let Some((name, test)) = sub {
                    write!(f, ".{name} ")?;
                    write_test(f, test)?;
                }
                Ok(())
            }
            // Both chains parse left-associatively, so only a right operand
            // of the same precedence (or a looser one) needs parentheses.
            Filter::And(l, r) => {
                write_operand(f, l, matches!(**l, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, r, matches!(**r, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Or(l, r) => {
                write_operand(f, l, false)?;
                f.write_str(" or ")?;
                write_operand(f, r, matches!(**r, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, operand: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({operand})")
    } else {
        write!(f, "{operand}")
    }
}

fn write_test(f: &mut impl Write, test: &AttrTest) -> fmt::Result {
    match test {
        AttrTest::Present => f.write_str("pr"),
        AttrTest::Compare(op, value) => {
            write!(f, "{} ", op.as_str())?;
            write_value(f, value)
        }
    }
}

fn write_value(f: &mut impl Write, value: &CompValue) -> fmt::Result {
    match value {
        CompValue::Str(s) => write_json_string(f, s),
        CompValue::Num(n) => write!(f, "{n}"),
        CompValue::Bool(b) => write!(f, "{b}"),
        CompValue::Null => f.write_str("null"),
    }
}

fn write_json_string(f: &mut impl Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

// --- Tokenizer ---------------------------------------------------------------

/// Which grammar is being read: decides the `scimType` and wording of errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grammar {
    Filter,
    Path,
}

impl Grammar {
    fn noun(self) -> &'static str {
        match self {
            Self::Filter => "filter",
            Self::Path => "path",
        }
    }

    fn error(self, detail: String) -> ScimError {
        match self {
            Self::Filter => ScimError::invalid_filter(detail),
            Self::Path => ScimError::invalid_path(detail),
        }
    }

    /// An error pointing at byte offset `pos` of `src`, reported as a 1-based
    /// character position (what a person counting in the log would see).
    fn error_at(self, src: &str, pos: usize, msg: &str) -> ScimError {
        let column = src.get(..pos).map_or(pos, |p| p.chars().count()) + 1;
        self.error(format!(
            "Invalid {} at character {column}: {msg}.",
            self.noun()
        ))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A JSON string literal, unescaped.
    Str(String),
    /// Anything else up to whitespace, a bracket or a quote: attribute paths,
    /// operators, logical words, numbers, `true`/`false`/`null`, `.sub` after
    /// `]`, and unquoted legacy values. The parser decides which by position.
    Word(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Byte offset into the source, for error positions.
    start: usize,
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

fn tokenize(src: &str, grammar: Grammar) -> ScimResult<VecDeque<Token>> {
    let mut out = VecDeque::new();
    let mut chars = src.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let tok = match c {
            c if c.is_whitespace() => continue,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '"' => Tok::Str(lex_string(src, start, &mut chars, grammar)?),
            _ => {
                while chars.next_if(|&(_, c)| !is_delimiter(c)).is_some() {}
                let end = chars.peek().map_or(src.len(), |&(i, _)| i);
                Tok::Word(src.get(start..end).unwrap_or_default().to_owned())
            }
        };
        out.push_back(Token { tok, start });
    }
    Ok(out)
}

/// Reads a JSON string body after its opening quote at `open`.
fn lex_string(
    src: &str,
    open: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    grammar: Grammar,
) -> ScimResult<String> {
    let unterminated =
        || grammar.error_at(src, open, "the string starting here has no closing '\"'");
    let mut out = String::new();
    loop {
        let (at, c) = chars.next().ok_or_else(unterminated)?;
        match c {
            '"' => return Ok(out),
            '\\' => {
                let (_, e) = chars.next().ok_or_else(unterminated)?;
                let c = match e {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' => lex_unicode_escape(src, at, chars, grammar)?,
                    other => {
                        return Err(grammar.error_at(
                            src,
                            at,
                            &format!(
                                "unknown escape '\\{other}' in a string; valid escapes are \
                                 \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX"
                            ),
                        ));
                    }
                };
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// Reads the `XXXX` of `\uXXXX` (the `\u` at `at` is consumed), joining a
/// UTF-16 surrogate pair written as two escapes.
fn lex_unicode_escape(
    src: &str,
    at: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    grammar: Grammar,
) -> ScimResult<char> {
    let bad = |msg: &str| grammar.error_at(src, at, msg);
    let hex4 = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = chars
                .next_if(|&(_, c)| c.is_ascii_hexdigit())
                .and_then(|(_, c)| c.to_digit(16))
                .ok_or_else(|| bad("'\\u' must be followed by four hexadecimal digits"))?;
            v = v * 16 + d;
        }
        Ok::<u32, ScimError>(v)
    };
    let first = hex4(chars)?;
    let code = match first {
        0xD800..=0xDBFF => {
            let low_follows = chars.next_if(|&(_, c)| c == '\\').is_some()
                && chars.next_if(|&(_, c)| c == 'u').is_some();
            let low = if low_follows { hex4(chars)? } else { 0 };
            if !(0xDC00..=0xDFFF).contains(&low) {
                return Err(bad(
                    "a high surrogate '\\uD800'-'\\uDBFF' must be followed by a low surrogate \
                     '\\uDC00'-'\\uDFFF'",
                ));
            }
            0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
        }
        0xDC00..=0xDFFF => {
            return Err(bad(
                "a low surrogate '\\uDC00'-'\\uDFFF' must follow a high surrogate",
            ));
        }
        other => other,
    };
    char::from_u32(code).ok_or_else(|| bad("'\\u' escape is not a valid character"))
}

// --- Parser ------------------------------------------------------------------

/// Recursive-descent parser over the token queue. `pub(crate)` so that
/// [`crate::path`] can reuse the attribute-path and bracket-filter rules.
#[derive(Debug)]
pub(crate) struct Parser<'a> {
    src: &'a str,
    grammar: Grammar,
    tokens: VecDeque<Token>,
    depth: usize,
    terms: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str, grammar: Grammar) -> ScimResult<Self> {
        let noun = grammar.noun();
        if src.len() > MAX_FILTER_LEN {
            return Err(grammar.error(format!(
                "Invalid {noun}: it is {} bytes long; the limit is {MAX_FILTER_LEN}.",
                src.len()
            )));
        }
        if src.trim().is_empty() {
            return Err(grammar.error(format!("Invalid {noun}: it is empty.")));
        }
        Ok(Self {
            src,
            grammar,
            tokens: tokenize(src, grammar)?,
            depth: 0,
            terms: 0,
        })
    }

    fn err(&self, pos: usize, msg: &str) -> ScimError {
        self.grammar.error_at(self.src, pos, msg)
    }

    /// Where the next token starts (the end of input when there is none).
    fn here(&self) -> usize {
        self.tokens.front().map_or(self.src.len(), |t| t.start)
    }

    fn describe_next(&self) -> String {
        describe(self.tokens.front())
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.front(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(keyword))
    }

    fn enter(&mut self, pos: usize) -> ScimResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(
                pos,
                &format!(
                    "nesting of parentheses, 'not' and brackets is deeper than {MAX_DEPTH} \
                     levels; simplify the {}",
                    self.grammar.noun()
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// `or_expr = and_expr *("or" and_expr)`, left-associative.
    pub(crate) fn or_expr(&mut self, in_brackets: bool) -> ScimResult<Filter> {
        let mut left = self.and_expr(in_brackets)?;
        while self.peek_keyword("or") {
            self.tokens.pop_front();
            let right = self.and_expr(in_brackets)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `and_expr = unary *("and" unary)`, left-associative.
    fn and_expr(&mut self, in_brackets: bool) -> ScimResult<Filter> {
        let mut left = self.unary(in_brackets)?;
        while self.peek_keyword("and") {
            self.tokens.pop_front();
            let right = self.unary(in_brackets)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `unary = "not" "(" or_expr ")" / "(" or_expr ")" / attr_expr`.
    fn unary(&mut self, in_brackets: bool) -> ScimResult<Filter> {
        enum Lead {
            Group,
            Not,
            NotWithoutParens,
            Attr,
            Bad,
        }
        let lead = match self.tokens.front().map(|t| &t.tok) {
            Some(Tok::LParen) => Lead::Group,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => {
                match self.tokens.get(1).map(|t| &t.tok) {
                    Some(Tok::LParen) => Lead::Not,
                    // `not eq 1`, `not pr`, `not[…]`: an attribute named "not".
                    Some(Tok::Word(next)) if is_operator(next) => Lead::Attr,
                    Some(Tok::LBracket) => Lead::Attr,
                    _ => Lead::NotWithoutParens,
                }
            }
            Some(Tok::Word(_)) => Lead::Attr,
            _ => Lead::Bad,
        };
        let start = self.here();
        match lead {
            Lead::Group | Lead::Not => {
                if matches!(lead, Lead::Not) {
                    self.tokens.pop_front();
                }
                let open = self.here();
                self.tokens.pop_front();
                self.enter(start)?;
                let inner = self.or_expr(in_brackets)?;
                self.close(&Tok::RParen, open)?;
                self.leave();
                Ok(match lead {
                    Lead::Not => Filter::Not(Box::new(inner)),
                    _ => inner,
                })
            }
            Lead::NotWithoutParens => Err(self.err(
                start,
                "'not' must be followed by a filter in parentheses, e.g. not (userName eq \"x\")",
            )),
            Lead::Attr => self.attr_expr(in_brackets),
            Lead::Bad => Err(self.err(
                start,
                &format!(
                    "expected an attribute name, '(' or 'not', found {}",
                    self.describe_next()
                ),
            )),
        }
    }

    /// `attrPath ("pr" / compareOp compValue)` or
    /// `attrPath "[" valFilter "]" ["." subAttr ("pr" / compareOp compValue)]`.
    fn attr_expr(&mut self, in_brackets: bool) -> ScimResult<Filter> {
        let path = self.attr_path()?;
        if self.at_bracket() {
            if in_brackets {
                return Err(self.err(
                    self.here(),
                    &format!(
                        "value filters cannot be nested: '{path}[' appears inside another '[…]'"
                    ),
                ));
            }
            let filter = self.bracket_filter(&path)?;
            let sub = match self.dot_sub()? {
                Some(name) => {
                    let test = self.attr_test(&format!("{path}[…].{name}"))?;
                    Some((name, test))
                }
                None => None,
            };
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(filter),
                sub,
            });
        }
        let test = self.attr_test(&path.to_string())?;
        Ok(Filter::Attr { path, test })
    }

    /// Consumes the closing token `close` of a group opened at `open`.
    fn close(&mut self, close: &Tok, open: usize) -> ScimResult<()> {
        if self.tokens.front().is_some_and(|t| t.tok == *close) {
            self.tokens.pop_front();
            return Ok(());
        }
        let (o, c) = match close {
            Tok::RBracket => ('[', ']'),
            _ => ('(', ')'),
        };
        let column = self.src.get(..open).map_or(open, |p| p.chars().count()) + 1;
        Err(self.err(
            self.here(),
            &format!(
                "expected 'and', 'or' or '{c}' closing the '{o}' at character {column}, found {}",
                self.describe_next()
            ),
        ))
    }

    /// Reads one attribute path word: `[URN ":"] attrName ["." subAttr]`.
    pub(crate) fn attr_path(&mut self) -> ScimResult<AttrPath> {
        match self.tokens.pop_front() {
            Some(Token {
                tok: Tok::Word(w),
                start,
                ..
            }) => self.attr_path_from_word(&w, start),
            other => {
                let pos = other.as_ref().map_or(self.src.len(), |t| t.start);
                Err(self.err(
                    pos,
                    &format!(
                        "expected an attribute name, found {}",
                        describe(other.as_ref())
                    ),
                ))
            }
        }
    }

    /// Splits a word into URN, name and sub-attribute. Attribute names cannot
    /// contain ':', so the URN is everything before the last ':' (URNs
    /// themselves contain ':' and '.', e.g. `…:enterprise:2.0:User`); the
    /// sub-attribute is after the '.' that follows the name.
    fn attr_path_from_word(&self, word: &str, start: usize) -> ScimResult<AttrPath> {
        let (urn, rest, rest_at) = match word.rsplit_once(':') {
            Some((urn, rest)) => (Some(urn), rest, start + urn.len() + 1),
            None => (None, word, start),
        };
        if let Some(urn) = urn {
            if !is_urn(urn) {
                return Err(self.err(
                    start,
                    &format!(
                        "'{}' is not a schema URN; attribute names can only be qualified by a \
                         schema URN such as '{ENTERPRISE_USER_SCHEMA}:manager'",
                        truncate(urn)
                    ),
                ));
            }
            if rest.is_empty() {
                return Err(self.err(
                    rest_at,
                    &format!(
                        "expected an attribute name after the schema URN '{}:'",
                        truncate(urn)
                    ),
                ));
            }
        }
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (rest, None),
        };
        self.check_attr_name(name, rest_at)?;
        if let Some(sub) = sub {
            let sub_at = rest_at + name.len() + 1;
            if sub.contains('.') {
                return Err(self.err(
                    sub_at,
                    &format!(
                        "'{}' has more than one '.'; SCIM attributes have at most one \
                         sub-attribute level",
                        truncate(rest)
                    ),
                ));
            }
            self.check_attr_name(sub, sub_at)?;
        }
        Ok(AttrPath {
            urn: urn.map(str::to_owned),
            name: name.to_owned(),
            sub: sub.map(str::to_owned),
        })
    }

    /// `ATTRNAME = (ALPHA / "$") *(ALPHA / DIGIT / "-" / "_" / "$")`; the
    /// leading `$` admits `$ref`.
    fn check_attr_name(&self, name: &str, at: usize) -> ScimResult<()> {
        let mut chars = name.char_indices();
        match chars.next() {
            None => Err(self.err(at, "expected an attribute name")),
            Some((_, c)) if !(c.is_ascii_alphabetic() || c == '$') => Err(self.err(
                at,
                &format!(
                    "'{}' is not an attribute name; names start with a letter",
                    truncate(name)
                ),
            )),
            Some(_) => match chars.find(|&(_, c)| !is_name_char(c)) {
                Some((i, c)) => Err(self.err(
                    at + i,
                    &format!(
                        "attribute name '{}' contains '{c}'; names use letters, digits, '-', \
                         '_' and '$'",
                        truncate(name)
                    ),
                )),
                None => Ok(()),
            },
        }
    }

    pub(crate) fn at_bracket(&self) -> bool {
        matches!(
            self.tokens.front(),
            Some(Token {
                tok: Tok::LBracket,
                ..
            })
        )
    }

    /// `"[" valFilter "]"` after `path`; attribute paths inside are relative
    /// to the elements of `path`.
    pub(crate) fn bracket_filter(&mut self, path: &AttrPath) -> ScimResult<Filter> {
        let open = self.here();
        if path.sub.is_some() {
            return Err(self.err(
                open,
                &format!(
                    "a value filter '[…]' must follow a multi-valued attribute, not the \
                     sub-attribute '{path}'"
                ),
            ));
        }
        self.tokens.pop_front();
        self.enter(open)?;
        let inner = self.or_expr(true)?;
        self.close(&Tok::RBracket, open)?;
        self.leave();
        Ok(inner)
    }

    /// The optional `.subAttr` after `]`.
    pub(crate) fn dot_sub(&mut self) -> ScimResult<Option<String>> {
        let (word, start) = match self.tokens.front() {
            Some(Token {
                tok: Tok::Word(w),
                start,
                ..
            }) if w.starts_with('.') => (w.clone(), *start),
            _ => return Ok(None),
        };
        self.tokens.pop_front();
        let name = word.get(1..).unwrap_or_default();
        if name.contains('.') {
            return Err(self.err(
                start,
                &format!(
                    "'{}' has more than one '.'; only one sub-attribute may follow ']'",
                    truncate(&word)
                ),
            ));
        }
        self.check_attr_name(name, start + 1)?;
        Ok(Some(name.to_owned()))
    }

    /// `"pr" / compareOp compValue`, after the attribute described by `subject`.
    fn attr_test(&mut self, subject: &str) -> ScimResult<AttrTest> {
        let pos = self.here();
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.err(
                pos,
                &format!(
                    "the filter has more than {MAX_TERMS} comparisons; split it into smaller \
                     requests"
                ),
            ));
        }
        let op = match self.tokens.front() {
            Some(Token {
                tok: Tok::Word(w), ..
            }) if w.eq_ignore_ascii_case("pr") => Ok(None),
            Some(Token {
                tok: Tok::Word(w), ..
            }) => parse_op(w).map(Some).ok_or(()),
            _ => Err(()),
        };
        let Ok(op) = op else {
            return Err(self.err(
                pos,
                &format!(
                    "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr) after '{}', \
                     found {}",
                    truncate(subject),
                    self.describe_next()
                ),
            ));
        };
        self.tokens.pop_front();
        match op {
            None => Ok(AttrTest::Present),
            Some(op) => Ok(AttrTest::Compare(op, self.comp_value(op)?)),
        }
    }

    /// `compValue = false / null / true / number / string`, plus a bare word
    /// as a string (legacy clients send `externalId eq jyoung`).
    fn comp_value(&mut self, op: CompareOp) -> ScimResult<CompValue> {
        match self.tokens.pop_front() {
            Some(Token {
                tok: Tok::Str(s), ..
            }) => Ok(CompValue::Str(s)),
            Some(Token {
                tok: Tok::Word(w),
                start,
                ..
            }) => {
                if w.eq_ignore_ascii_case("true") {
                    Ok(CompValue::Bool(true))
                } else if w.eq_ignore_ascii_case("false") {
                    Ok(CompValue::Bool(false))
                } else if w.eq_ignore_ascii_case("null") {
                    Ok(CompValue::Null)
                } else if is_json_number(&w) {
                    Number::from_str(&w).map(CompValue::Num).map_err(|_| {
                        self.err(
                            start,
                            &format!("the number '{}' is out of range", truncate(&w)),
                        )
                    })
                } else {
                    Ok(CompValue::Str(w))
                }
            }
            other => {
                let pos = other.as_ref().map_or(self.src.len(), |t| t.start);
                Err(self.err(
                    pos,
                    &format!(
                        "expected a value after '{}' (a quoted string, number, true, false or \
                         null), found {}",
                        op.as_str(),
                        describe(other.as_ref())
                    ),
                ))
            }
        }
    }

    /// Fails unless every token has been consumed.
    pub(crate) fn expect_end(&self) -> ScimResult<()> {
        let Some(next) = self.tokens.front() else {
            return Ok(());
        };
        let found = describe(Some(next));
        let msg = match (&next.tok, self.grammar) {
            (Tok::RParen, _) => "found ')' without a matching '('".to_owned(),
            (Tok::RBracket, _) => "found ']' without a matching '['".to_owned(),
            (Tok::Word(_), Grammar::Filter) => format!(
                "expected 'and', 'or' or the end of the filter, found {found} (string values \
                 containing spaces must be in double quotes)"
            ),
            (_, Grammar::Filter) => {
                format!("expected 'and', 'or' or the end of the filter, found {found}")
            }
            (_, Grammar::Path) => format!("expected the end of the path, found {found}"),
        };
        Err(self.err(next.start, &msg))
    }
}

fn parse_op(word: &str) -> Option<CompareOp> {
    const OPS: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];
    OPS.into_iter()
        .find(|op| op.as_str().eq_ignore_ascii_case(word))
}

fn is_operator(word: &str) -> bool {
    word.eq_ignore_ascii_case("pr") || parse_op(word).is_some()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$')
}

/// A schema URN: `urn:` followed by URN characters (RFC 8141, loosely).
fn is_urn(s: &str) -> bool {
    s.len() > 4
        && s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '-' | '.'
                        | '_'
                        | ':'
                        | '%'
                        | '+'
                        | ','
                        | ';'
                        | '='
                        | '!'
                        | '*'
                        | '\''
                        | '/'
                        | '$'
                        | '@'
                        | '~'
                )
        })
}

/// JSON `number`: `-? (0 / [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let mut it = s.bytes().peekable();
    let digits = |it: &mut std::iter::Peekable<std::str::Bytes<'_>>| {
        let mut n = 0;
        while it.next_if(u8::is_ascii_digit).is_some() {
            n += 1;
        }
        n
    };
    it.next_if_eq(&b'-');
    match it.next() {
        Some(b'0') => {}
        Some(b'1'..=b'9') => {
            digits(&mut it);
        }
        _ => return false,
    }
    if it.next_if_eq(&b'.').is_some() && digits(&mut it) == 0 {
        return false;
    }
    if it.next_if(|b| matches!(b, b'e' | b'E')).is_some() {
        it.next_if(|b| matches!(b, b'+' | b'-'));
        if digits(&mut it) == 0 {
            return false;
        }
    }
    it.next().is_none()
}

fn describe(token: Option<&Token>) -> String {
    match token.map(|t| &t.tok) {
        None => "the end of the input".to_owned(),
        Some(Tok::LParen) => "'('".to_owned(),
        Some(Tok::RParen) => "')'".to_owned(),
        Some(Tok::LBracket) => "'['".to_owned(),
        Some(Tok::RBracket) => "']'".to_owned(),
        Some(Tok::Str(s)) => {
            let mut quoted = String::new();
            let _ = write_json_string(&mut quoted, &truncate(s));
            format!("the string {quoted}")
        }
        Some(Tok::Word(w)) => format!("'{}'", truncate(w)),
    }
}

/// Caps echoed input so that error details stay readable.
fn truncate(s: &str) -> String {
    const MAX_CHARS: usize = 48;
    if s.chars().count() <= MAX_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_CHARS).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScimType;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn parse(s: &str) -> Filter {
        parse_filter(s).unwrap_or_else(|e| panic!("{s:?} should parse: {}", e.detail))
    }

    fn error(s: &str) -> ScimError {
        let err = parse_filter(s).expect_err(s);
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{s:?}");
        assert_eq!(err.status, 400);
        err
    }

    fn attr(path: AttrPath, op: CompareOp, value: CompValue) -> Filter {
        Filter::Attr {
            path,
            test: AttrTest::Compare(op, value),
        }
    }

    fn eq(name: &str, value: &str) -> Filter {
        attr(AttrPath::simple(name), CompareOp::Eq, s(value))
    }

    fn s(v: &str) -> CompValue {
        CompValue::Str(v.to_owned())
    }

    fn and(l: Filter, r: Filter) -> Filter {
        Filter::And(Box::new(l), Box::new(r))
    }

    fn or(l: Filter, r: Filter) -> Filter {
        Filter::Or(Box::new(l), Box::new(r))
    }

    fn present(path: AttrPath) -> Filter {
        Filter::Attr {
            path,
            test: AttrTest::Present,
        }
    }

    // --- Entra forms (entra.md §2.11) ---

    #[test]
    fn parses_entra_user_name_match() {
        let f = parse(r#"userName eq "alice@contoso.com""#);
        assert_eq!(f, eq("userName", "alice@contoso.com"));
    }

    #[test]
    fn parses_entra_external_id_match() {
        let f = parse(r#"externalId eq "5a2c6f0e-1b7d-4c3e-9f10-2d1a0b3c4d5e""#);
        assert_eq!(f, eq("externalId", "5a2c6f0e-1b7d-4c3e-9f10-2d1a0b3c4d5e"));
    }

    #[test]
    fn parses_entra_email_match_with_value_path_then_sub_attribute() {
        let f = parse(r#"emails[type eq "work"].value eq "user@contoso.com""#);
        assert_eq!(
            f,
            Filter::ValuePath {
                path: AttrPath::simple("emails"),
                filter: Box::new(eq("type", "work")),
                sub: Some((
                    "value".to_owned(),
                    AttrTest::Compare(CompareOp::Eq, s("user@contoso.com"))
                )),
            }
        );
    }

    #[test]
    fn parses_entra_test_connection_probe_with_random_guid() {
        let f = parse(r#"userName eq "0c6b4a6e-2f55-4d3b-9a7e-8f9d6c5b4a3e""#);
        assert_eq!(f, eq("userName", "0c6b4a6e-2f55-4d3b-9a7e-8f9d6c5b4a3e"));
    }

    #[test]
    fn parses_entra_group_display_name_match() {
        let f = parse(r#"displayName eq "Sales EMEA""#);
        assert_eq!(f, eq("displayName", "Sales EMEA"));
    }

    #[test]
    fn parses_legacy_manager_reference_check() {
        let f = parse(r#"id eq "x" and manager eq "y""#);
        assert_eq!(f, and(eq("id", "x"), eq("manager", "y")));
    }

    #[test]
    fn parses_legacy_group_membership_check() {
        let f = parse(r#"id eq "g" and members eq "u""#);
        assert_eq!(f, and(eq("id", "g"), eq("members", "u")));
    }

    #[test]
    fn parses_reference_code_filter_with_unquoted_values_and_capitalised_names() {
        let f = parse(
            "name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co \
             example.org)",
        );
        let co = |v: &str| attr(AttrPath::with_sub("emails", "Value"), CompareOp::Co, s(v));
        assert_eq!(
            f,
            and(
                attr(
                    AttrPath::with_sub("name", "FamilyName"),
                    CompareOp::Eq,
                    s("Employee")
                ),
                or(co("example.com"), co("example.org"))
            )
        );
    }

    #[test]
    fn parses_primary_true_value_path_used_by_the_validator() {
        let f = parse(r#"emails[primary eq true].value eq "a@b.com""#);
        let Filter::ValuePath { filter, .. } = f else {
            panic!("expected a value path")
        };
        assert_eq!(
            *filter,
            attr(
                AttrPath::simple("primary"),
                CompareOp::Eq,
                CompValue::Bool(true)
            )
        );
    }

    // --- RFC 7644 §3.4.2.2 examples ---

    #[test]
    fn parses_rfc_title_present_and_user_type() {
        let f = parse(r#"title pr and userType eq "Employee""#);
        assert_eq!(
            f,
            and(
                present(AttrPath::simple("title")),
                eq("userType", "Employee")
            )
        );
    }

    #[test]
    fn parses_rfc_grouped_or_inside_and() {
        let f = parse(
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        );
        assert_eq!(
            f,
            and(
                eq("userType", "Employee"),
                or(
                    attr(AttrPath::simple("emails"), CompareOp::Co, s("example.com")),
                    attr(
                        AttrPath::with_sub("emails", "value"),
                        CompareOp::Co,
                        s("example.org")
                    )
                )
            )
        );
    }

    #[test]
    fn parses_rfc_value_filters_joined_by_or() {
        let f = parse(
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        );
        let vp = |name: &str, ty: &str, domain: &str| Filter::ValuePath {
            path: AttrPath::simple(name),
            filter: Box::new(and(
                eq("type", ty),
                attr(AttrPath::simple("value"), CompareOp::Co, s(domain)),
            )),
            sub: None,
        };
        assert_eq!(
            f,
            or(
                vp("emails", "work", "@example.com"),
                vp("ims", "xmpp", "@foo.com")
            )
        );
    }

    #[test]
    fn parses_rfc_meta_last_modified_comparison() {
        let f = parse(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#);
        assert_eq!(
            f,
            attr(
                AttrPath::with_sub("meta", "lastModified"),
                CompareOp::Gt,
                s("2011-05-13T04:42:34Z")
            )
        );
    }

    #[test]
    fn parses_rfc_not_with_parentheses() {
        let f = parse(r#"not (userName eq "x")"#);
        assert_eq!(f, Filter::Not(Box::new(eq("userName", "x"))));
    }

    #[test]
    fn parses_rfc_examples_that_mix_every_form() {
        // Arrange
        let examples = [
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        ];
        // Act / Assert
        for example in examples {
            parse(example);
        }
    }

    // --- Grammar details ---

    #[test]
    fn parses_operators_and_logical_words_case_insensitively() {
        let f = parse(r#"USERNAME EQ "x" AnD title PR Or NOT (id Ne "y")"#);
        assert_eq!(
            f,
            or(
                and(eq("USERNAME", "x"), present(AttrPath::simple("title"))),
                Filter::Not(Box::new(attr(
                    AttrPath::simple("id"),
                    CompareOp::Ne,
                    s("y")
                )))
            )
        );
    }

    #[test]
    fn parses_every_comparison_operator() {
        for (text, op) in [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ] {
            let f = parse(&format!(r#"title {text} "v""#));
            assert_eq!(f, attr(AttrPath::simple("title"), op, s("v")));
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = parse(r#"a eq "1" or b eq "2" and c eq "3""#);
        assert_eq!(f, or(eq("a", "1"), and(eq("b", "2"), eq("c", "3"))));
    }

    #[test]
    fn not_binds_tighter_than_and() {
        let f = parse(r#"not (a eq "1") and b eq "2""#);
        assert_eq!(f, and(Filter::Not(Box::new(eq("a", "1"))), eq("b", "2")));
    }

    #[test]
    fn parentheses_override_precedence() {
        let f = parse(r#"(a eq "1" or b eq "2") and c eq "3""#);
        assert_eq!(f, and(or(eq("a", "1"), eq("b", "2")), eq("c", "3")));
    }

    #[test]
    fn logical_chains_are_left_associative() {
        let f = parse(r#"a eq "1" and b eq "2" and c eq "3""#);
        assert_eq!(f, and(and(eq("a", "1"), eq("b", "2")), eq("c", "3")));
    }

    #[test]
    fn parses_enterprise_urn_qualified_sub_attribute() {
        let f = parse(&format!(r#"{ENTERPRISE}:manager.value eq "x""#));
        let path = AttrPath {
            urn: Some(ENTERPRISE.to_owned()),
            name: "manager".into(),
            sub: Some("value".into()),
        };
        assert_eq!(f, attr(path, CompareOp::Eq, s("x")));
    }

    #[test]
    fn parses_core_urn_qualified_attribute() {
        let f = parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#);
        let path = AttrPath {
            urn: Some("urn:ietf:params:scim:schemas:core:2.0:User".into()),
            name: "userName".into(),
            sub: None,
        };
        assert_eq!(f, attr(path, CompareOp::Eq, s("x")));
    }

    #[test]
    fn parses_custom_extension_urn_qualified_attribute() {
        let f =
            parse(r#"urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:costCode eq "C1""#);
        let Filter::Attr { path, .. } = f else {
            panic!("expected an attribute comparison")
        };
        assert_eq!(
            path.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User")
        );
        assert_eq!(path.name, "costCode");
    }

    #[test]
    fn parses_dollar_ref_sub_attribute() {
        let f = parse(r#"members.$ref pr"#);
        assert_eq!(f, present(AttrPath::with_sub("members", "$ref")));
    }

    #[test]
    fn parses_json_string_escapes() {
        let f = parse(r#"title eq "q\" b\\ s\/ \b\f\n\r\t \u00e9""#);
        assert_eq!(f, eq("title", "q\" b\\ s/ \u{8}\u{c}\n\r\t é"));
    }

    #[test]
    fn parses_surrogate_pair_escape() {
        let f = parse(r#"title eq "\ud83d\ude00""#);
        assert_eq!(f, eq("title", "😀"));
    }

    #[test]
    fn parses_raw_non_ascii_strings() {
        let f = parse(r#"displayName eq "Zoë Ångström 😀""#);
        assert_eq!(f, eq("displayName", "Zoë Ångström 😀"));
    }

    #[test]
    fn parses_numbers_as_json_numbers() {
        for (text, expected) in [
            ("42", Number::from(42)),
            ("-7", Number::from(-7)),
            ("0", Number::from(0)),
            ("18446744073709551615", Number::from(u64::MAX)),
        ] {
            let f = parse(&format!("age gt {text}"));
            assert_eq!(
                f,
                attr(
                    AttrPath::simple("age"),
                    CompareOp::Gt,
                    CompValue::Num(expected)
                )
            );
        }
        for (text, expected) in [("2.5", 2.5), ("1e3", 1000.0), ("-1.5E-2", -0.015)] {
            let f = parse(&format!("score ge {text}"));
            let Filter::Attr {
                test: AttrTest::Compare(_, CompValue::Num(n)),
                ..
            } = f
            else {
                panic!("{text} should be a number")
            };
            assert_eq!(n.as_f64(), Some(expected));
        }
    }

    #[test]
    fn parses_true_false_null_case_insensitively() {
        let f = parse("active eq True and deleted eq FALSE and nickName eq NULL");
        assert_eq!(
            f,
            and(
                and(
                    attr(
                        AttrPath::simple("active"),
                        CompareOp::Eq,
                        CompValue::Bool(true)
                    ),
                    attr(
                        AttrPath::simple("deleted"),
                        CompareOp::Eq,
                        CompValue::Bool(false)
                    )
                ),
                attr(AttrPath::simple("nickName"), CompareOp::Eq, CompValue::Null)
            )
        );
    }

    #[test]
    fn parses_unquoted_legacy_value_as_string() {
        assert_eq!(parse("externalId eq jyoung"), eq("externalId", "jyoung"));
        assert_eq!(
            parse("userName eq j.young@contoso.com"),
            eq("userName", "j.young@contoso.com")
        );
    }

    #[test]
    fn parses_unquoted_word_that_is_not_a_json_number_as_string() {
        assert_eq!(parse("externalId eq 00123"), eq("externalId", "00123"));
        assert_eq!(parse("externalId eq 12ab"), eq("externalId", "12ab"));
    }

    #[test]
    fn quoted_true_stays_a_string() {
        assert_eq!(parse(r#"active eq "True""#), eq("active", "True"));
    }

    #[test]
    fn parses_grouping_inside_value_filter() {
        let f = parse(r#"emails[(type eq "work" or type eq "home") and not (primary eq false)]"#);
        let Filter::ValuePath { filter, sub, .. } = f else {
            panic!("expected a value path")
        };
        assert!(sub.is_none());
        assert!(matches!(*filter, Filter::And(..)));
    }

    #[test]
    fn accepts_attributes_named_like_keywords() {
        assert_eq!(parse(r#"not eq "x""#), eq("not", "x"));
        assert_eq!(parse(r#"and eq "x""#), eq("and", "x"));
        assert_eq!(parse("pr pr"), present(AttrPath::simple("pr")));
    }

    #[test]
    fn tolerates_surrounding_and_extra_whitespace() {
        assert_eq!(parse("  userName   eq\t\"x\"  "), eq("userName", "x"));
    }

    // --- Errors ---

    #[test]
    fn rejects_empty_filter() {
        assert!(error("   ").detail.contains("empty"));
    }

    #[test]
    fn rejects_missing_operator_naming_the_token_and_position() {
        let err = error(r#"userName "x""#);
        assert!(err.detail.contains("character 10"), "{}", err.detail);
        assert!(err.detail.contains("after 'userName'"), "{}", err.detail);
        assert!(err.detail.contains("the string \"x\""), "{}", err.detail);
    }

    #[test]
    fn rejects_unknown_operator() {
        let err = error(r#"userName like "x""#);
        assert!(err.detail.contains("'like'"), "{}", err.detail);
    }

    #[test]
    fn rejects_missing_value() {
        let err = error("userName eq");
        assert!(
            err.detail.contains("expected a value after 'eq'"),
            "{}",
            err.detail
        );
        assert!(err.detail.contains("end of the input"), "{}", err.detail);
    }

    #[test]
    fn rejects_unquoted_value_containing_spaces_with_a_hint() {
        let err = error("displayName eq Sales Team");
        assert!(err.detail.contains("'Team'"), "{}", err.detail);
        assert!(err.detail.contains("double quotes"), "{}", err.detail);
    }

    #[test]
    fn rejects_unbalanced_parentheses_and_brackets() {
        assert!(
            error(r#"(userName eq "x""#)
                .detail
                .contains("')' closing the '(' at character 1")
        );
        assert!(
            error(r#"userName eq "x")"#)
                .detail
                .contains("without a matching '('")
        );
        assert!(
            error(r#"emails[type eq "work""#)
                .detail
                .contains("']' closing the '['")
        );
        assert!(
            error(r#"userName eq "x"]"#)
                .detail
                .contains("without a matching '['")
        );
    }

    #[test]
    fn rejects_not_without_parentheses() {
        let err = error(r#"not userName eq "x""#);
        assert!(
            err.detail.contains("'not' must be followed"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn rejects_dangling_logical_word() {
        let err = error(r#"userName eq "x" and"#);
        assert!(err.detail.contains("end of the input"), "{}", err.detail);
    }

    #[test]
    fn rejects_attribute_name_starting_with_a_digit() {
        let err = error(r#"1name eq "x""#);
        assert!(err.detail.contains("start with a letter"), "{}", err.detail);
    }

    #[test]
    fn rejects_attribute_name_with_invalid_character() {
        let err = error(r#"user@name eq "x""#);
        assert!(err.detail.contains("contains '@'"), "{}", err.detail);
        assert!(err.detail.contains("character 5"), "{}", err.detail);
    }

    #[test]
    fn rejects_qualifier_that_is_not_a_urn() {
        let err = error(r#"foo:bar eq "x""#);
        assert!(err.detail.contains("not a schema URN"), "{}", err.detail);
    }

    #[test]
    fn rejects_urn_without_attribute_name() {
        let err = error(&format!(r#"{ENTERPRISE}: eq "x""#));
        assert!(
            err.detail.contains("expected an attribute name after"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn rejects_two_sub_attribute_levels() {
        let err = error(r#"name.givenName.first eq "x""#);
        assert!(err.detail.contains("more than one '.'"), "{}", err.detail);
    }

    #[test]
    fn rejects_nested_value_paths() {
        let err = error(r#"emails[type[value eq "x"] eq "work"]"#);
        assert!(err.detail.contains("cannot be nested"), "{}", err.detail);
    }

    #[test]
    fn rejects_value_filter_on_a_sub_attribute() {
        let err = error(r#"emails.value[type eq "work"]"#);
        assert!(
            err.detail.contains("not the sub-attribute"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn rejects_empty_value_filter() {
        let err = error("emails[]");
        assert!(err.detail.contains("found ']'"), "{}", err.detail);
    }

    #[test]
    fn rejects_value_path_sub_attribute_without_operator() {
        let err = error(r#"emails[type eq "work"].value"#);
        assert!(
            err.detail.contains("expected an operator"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn rejects_unterminated_string() {
        let err = error(r#"userName eq "abc"#);
        assert!(err.detail.contains("no closing"), "{}", err.detail);
        assert!(err.detail.contains("character 13"), "{}", err.detail);
    }

    #[test]
    fn rejects_unknown_escape() {
        assert!(
            error(r#"title eq "a\qb""#)
                .detail
                .contains("unknown escape '\\q'")
        );
    }

    #[test]
    fn rejects_short_unicode_escape() {
        assert!(
            error(r#"title eq "\u12""#)
                .detail
                .contains("four hexadecimal digits")
        );
    }

    #[test]
    fn rejects_lone_surrogates() {
        assert!(
            error(r#"title eq "\ud83d""#)
                .detail
                .contains("low surrogate")
        );
        assert!(
            error(r#"title eq "\ud83dx""#)
                .detail
                .contains("low surrogate")
        );
        assert!(
            error(r#"title eq "\ude00""#)
                .detail
                .contains("must follow a high surrogate")
        );
    }

    #[test]
    fn rejects_number_out_of_range() {
        assert!(error("age gt 1e999").detail.contains("out of range"));
    }

    #[test]
    fn rejects_filter_longer_than_limit() {
        // Arrange
        let long = format!(r#"userName eq "{}""#, "a".repeat(MAX_FILTER_LEN));
        // Act
        let err = error(&long);
        // Assert
        assert!(err.detail.contains("limit is 4096"), "{}", err.detail);
    }

    #[test]
    fn accepts_filter_exactly_at_length_limit() {
        let prefix = r#"userName eq ""#;
        let long = format!(
            r#"{prefix}{}""#,
            "a".repeat(MAX_FILTER_LEN - prefix.len() - 1)
        );
        assert_eq!(long.len(), MAX_FILTER_LEN);
        parse(&long);
    }

    fn nested(levels: usize) -> String {
        format!(r#"{}a eq "1"{}"#, "(".repeat(levels), ")".repeat(levels))
    }

    #[test]
    fn accepts_filter_nested_exactly_to_the_limit() {
        parse(&nested(MAX_DEPTH));
        let mixed = format!(
            r#"emails[{}type eq "w"{}]"#,
            "not (".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        parse(&mixed);
    }

    #[test]
    fn rejects_filter_nested_deeper_than_limit() {
        let err = error(&nested(MAX_DEPTH + 1));
        assert!(err.detail.contains("deeper than 16"), "{}", err.detail);
        let mixed = format!(
            r#"emails[{}type eq "w"{}]"#,
            "not (".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        );
        assert!(error(&mixed).detail.contains("deeper than 16"));
    }

    #[test]
    fn rejects_pathological_nesting_quickly_without_exhausting_the_stack() {
        let err = error(&"(".repeat(MAX_FILTER_LEN));
        assert!(err.detail.contains("deeper than"), "{}", err.detail);
    }

    fn terms(n: usize) -> String {
        (0..n)
            .map(|i| format!("a eq {i}"))
            .collect::<Vec<_>>()
            .join(" or ")
    }

    #[test]
    fn accepts_filter_with_exactly_the_maximum_number_of_terms() {
        let f = parse(&terms(MAX_TERMS));
        assert!(matches!(f, Filter::Or(..)));
    }

    #[test]
    fn rejects_filter_with_more_terms_than_limit() {
        let err = error(&terms(MAX_TERMS + 1));
        assert!(
            err.detail.contains("more than 64 comparisons"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn counts_value_path_sub_attribute_tests_as_terms() {
        let each = r#"emails[type eq "w"].value eq "x""#;
        let at_limit = vec![each; MAX_TERMS / 2].join(" and ");
        parse(&at_limit);
        let over = format!(r#"{at_limit} and title pr"#);
        assert!(error(&over).detail.contains("more than 64"));
    }

    // --- Display ---

    #[test]
    fn display_renders_canonical_text() {
        let f = parse(r#"USERNAME EQ "x" AnD (title PR Or emails[TYPE eq "work"].value SW jo)"#);
        assert_eq!(
            f.to_string(),
            r#"USERNAME eq "x" and (title pr or emails[TYPE eq "work"].value sw "jo")"#
        );
    }

    #[test]
    fn display_parenthesises_right_nested_chains() {
        let right_and = and(eq("a", "1"), and(eq("b", "2"), eq("c", "3")));
        assert_eq!(
            right_and.to_string(),
            r#"a eq "1" and (b eq "2" and c eq "3")"#
        );
        let right_or = or(eq("a", "1"), or(eq("b", "2"), eq("c", "3")));
        assert_eq!(
            right_or.to_string(),
            r#"a eq "1" or (b eq "2" or c eq "3")"#
        );
        assert_eq!(parse(&right_and.to_string()), right_and);
        assert_eq!(parse(&right_or.to_string()), right_or);
    }

    #[test]
    fn display_escapes_strings() {
        let f = eq("title", "a\"b\\c\nd\u{1}é");
        assert_eq!(f.to_string(), r#"title eq "a\"b\\c\nd\u0001é""#);
        assert_eq!(parse(&f.to_string()), f);
    }

    const SAMPLES: &[&str] = &[
        r#"userName eq "alice@contoso.com""#,
        r#"externalId eq "5a2c6f0e-1b7d-4c3e-9f10-2d1a0b3c4d5e""#,
        r#"emails[type eq "work"].value eq "user@contoso.com""#,
        r#"displayName eq "Sales EMEA""#,
        r#"id eq "x" and manager eq "y""#,
        r#"id eq "g" and members eq "u""#,
        r#"title pr and userType eq "Employee""#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"not (userName eq "x")"#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
        "name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co example.org)",
        "externalId eq jyoung",
        r#"active eq True and age ge -1.5e3 and nickName eq null"#,
        r#"title eq "\ud83d\ude00 \" \\ \n""#,
        r#"(a eq 1 or b eq 2) and not (c pr or d[e eq 1 or (f eq 2)].g ne 3)"#,
        r#"emails[primary eq true].value eq "a@b.com""#,
        r#"members.$ref pr"#,
    ];

    #[test]
    fn display_round_trips_every_sample() {
        for sample in SAMPLES {
            // Arrange
            let f = parse(sample);
            // Act
            let text = f.to_string();
            // Assert
            assert_eq!(parse(&text), f, "{sample} rendered as {text}");
        }
    }

    // --- conjuncts ---

    #[test]
    fn conjuncts_flattens_the_top_level_and_chain_in_order() {
        let f = parse(r#"id eq "g" and members eq "u" and (a eq "1" and b eq "2")"#);
        let parts = f.conjuncts();
        assert_eq!(
            parts,
            vec![
                &eq("id", "g"),
                &eq("members", "u"),
                &eq("a", "1"),
                &eq("b", "2")
            ]
        );
    }

    #[test]
    fn conjuncts_of_a_single_term_is_the_term() {
        let f = parse(r#"emails[type eq "work"].value eq "x""#);
        assert_eq!(f.conjuncts(), vec![&f]);
    }

    #[test]
    fn conjuncts_does_not_descend_into_or_or_not() {
        let f = parse(r#"a eq "1" and (b eq "2" or c eq "3") and not (d eq "4" and e eq "5")"#);
        let parts = f.conjuncts();
        assert_eq!(parts.len(), 3);
        assert!(matches!(parts[1], Filter::Or(..)));
        assert!(matches!(parts[2], Filter::Not(..)));
    }

    // --- Robustness ---

    /// Feeds truncations, deletions, insertions and random splices of real
    /// filters to both parsers: none may panic, and every accepted filter must
    /// round-trip through `Display`.
    #[test]
    fn survives_truncated_and_mutated_filters_without_panicking() {
        // Arrange
        const NOISE: &[&str] = &[
            "(", ")", "[", "]", "\"", "\\", "\\u", "\\ud83d", ".", ":", " ", "and", "or", "not",
            "eq", "pr", "urn:", "emails", "1e5", "-", "true", "é", "😀", "$",
        ];
        let check = |input: &str| {
            if let Ok(f) = parse_filter(input) {
                let text = f.to_string();
                assert_eq!(parse_filter(&text).as_ref(), Ok(&f), "{input:?} → {text:?}");
            }
            let _ = crate::path::parse_patch_path(input);
            let _ = crate::path::parse_attr_path(input);
        };
        let mut seed: u64 = 0x5eed;
        let mut rand = move |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(seed >> 33).unwrap_or(0) % n.max(1)
        };
        let mut cases = 0usize;
        // Act / Assert
        for sample in SAMPLES {
            let bounds: Vec<usize> = sample
                .char_indices()
                .map(|(i, _)| i)
                .chain([sample.len()])
                .collect();
            let head = |i: usize| sample.get(..i).unwrap_or_default();
            let tail = |i: usize| sample.get(i..).unwrap_or_default();
            for &b in &bounds {
                check(head(b));
                check(tail(b));
                cases += 2;
            }
            for w in bounds.windows(2) {
                let (a, b) = (w[0], w[1]);
                check(&format!("{}{}", head(a), tail(b)));
                for noise in NOISE {
                    check(&format!("{}{noise}{}", head(a), tail(a)));
                    check(&format!("{}{noise}{}", head(a), tail(b)));
                    cases += 2;
                }
            }
        }
        for _ in 0..3000 {
            let mut input = String::new();
            for _ in 0..rand(12) {
                if rand(2) == 0 {
                    input.push_str(NOISE[rand(NOISE.len())]);
                } else {
                    let sample = SAMPLES[rand(SAMPLES.len())];
                    let bounds: Vec<usize> = sample.char_indices().map(|(i, _)| i).collect();
                    let a = bounds[rand(bounds.len())];
                    let b = bounds[rand(bounds.len())].max(a);
                    input.push_str(sample.get(a..b).unwrap_or_default());
                }
            }
            check(&input);
            cases += 1;
        }
        assert!(cases > 10_000, "only {cases} cases");
    }

    #[test]
    fn multi_byte_characters_anywhere_give_a_filter_error_or_a_filter_never_a_panic() {
        // Arrange: attribute names are ASCII; values may be anything.
        for (text, ok) in [
            (r#"ab€ eq "x""#, false),
            (r#"urn€:x eq "x""#, false),
            (r#"urn:€:x eq 1"#, false),
            (r#"emails[ty€pe eq "work"]"#, false),
            (r#"€"#, false),
            (r#"userName eq "İstanbul€""#, true),
            (r#"userName eq İ€"#, true),
            (r#"emails[type eq "wörk"].value eq "ü@x""#, true),
        ] {
            // Act
            let result = parse_filter(text);
            // Assert
            match result {
                Ok(f) => {
                    assert!(ok, "{text:?} parsed");
                    assert_eq!(parse_filter(&f.to_string()).unwrap(), f);
                }
                Err(e) => {
                    assert!(!ok, "{text:?}: {}", e.detail);
                    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
                }
            }
        }
    }
}
