//! Attribute paths inside filters and PATCH paths: `[URN ":"] name ["." sub]`,
//! name characters, schema URNs, and the `[…]` value filter and `.sub` that
//! may follow. Changes when attribute naming rules change.

use super::Parser;
use super::lexer::{Tok, Token, describe, truncate};
use crate::ast::{AttrPath, Filter};
use crate::error::ScimResult;
use crate::schema::ENTERPRISE_USER_SCHEMA;

impl Parser<'_> {
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
