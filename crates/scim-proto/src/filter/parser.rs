//! The recursive-descent filter grammar (`or`, `and`, `not`, groups,
//! comparisons and their values), with the nesting and comparison caps.
//! Changes when the filter grammar or its limits change.

use std::collections::VecDeque;
use std::str::FromStr;

use serde_json::Number;

use super::lexer::{Grammar, Tok, Token, describe, tokenize, truncate};
use super::{MAX_DEPTH, MAX_FILTER_LEN, MAX_TERMS};
use crate::ast::{AttrTest, CompValue, CompareOp, Filter};
use crate::error::{ScimError, ScimResult};

/// Recursive-descent parser over the token queue. `pub(crate)` so that
/// [`crate::path`] can reuse the attribute-path and bracket-filter rules.
#[derive(Debug)]
pub(crate) struct Parser<'a> {
    pub(super) src: &'a str,
    grammar: Grammar,
    pub(super) tokens: VecDeque<Token>,
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

    pub(super) fn err(&self, pos: usize, msg: &str) -> ScimError {
        self.grammar.error_at(self.src, pos, msg)
    }

    /// Where the next token starts (the end of input when there is none).
    pub(super) fn here(&self) -> usize {
        self.tokens.front().map_or(self.src.len(), |t| t.start)
    }

    pub(super) fn describe_next(&self) -> String {
        describe(self.tokens.front())
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.front(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(keyword))
    }

    pub(super) fn enter(&mut self, pos: usize) -> ScimResult<()> {
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

    pub(super) fn leave(&mut self) {
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
    pub(super) fn close(&mut self, close: &Tok, open: usize) -> ScimResult<()> {
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
