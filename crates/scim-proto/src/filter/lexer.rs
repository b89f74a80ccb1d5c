//! The tokenizer shared by filters and PATCH paths: brackets, JSON strings
//! (escapes and surrogate pairs) and bare words, with error positions in
//! characters and which grammar an error belongs to. Changes when the
//! lexical rules or the error wording change.

use std::collections::VecDeque;

use super::display::write_json_string;
use crate::error::{ScimError, ScimResult};

/// Which grammar is being read: decides the `scimType` and wording of errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grammar {
    Filter,
    Path,
}

impl Grammar {
    pub(super) fn noun(self) -> &'static str {
        match self {
            Self::Filter => "filter",
            Self::Path => "path",
        }
    }

    pub(super) fn error(self, detail: String) -> ScimError {
        match self {
            Self::Filter => ScimError::invalid_filter(detail),
            Self::Path => ScimError::invalid_path(detail),
        }
    }

    /// An error pointing at byte offset `pos` of `src`, reported as a 1-based
    /// character position (what a person counting in the log would see).
    pub(super) fn error_at(self, src: &str, pos: usize, msg: &str) -> ScimError {
        let column = src.get(..pos).map_or(pos, |p| p.chars().count()) + 1;
        self.error(format!(
            "Invalid {} at character {column}: {msg}.",
            self.noun()
        ))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
pub(super) struct Token {
    pub(super) tok: Tok,
    /// Byte offset into the source, for error positions.
    pub(super) start: usize,
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

pub(super) fn tokenize(src: &str, grammar: Grammar) -> ScimResult<VecDeque<Token>> {
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

pub(super) fn describe(token: Option<&Token>) -> String {
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
pub(super) fn truncate(s: &str) -> String {
    const MAX_CHARS: usize = 48;
    if s.chars().count() <= MAX_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_CHARS).collect();
    out.push('…');
    out
}
