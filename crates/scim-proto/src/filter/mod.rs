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
//!
//! Layout: `lexer` (tokens, error positions), `parser` (the expression
//! grammar), `names` (attribute paths and value filters), `display`
//! (canonical text); this module holds the limits and the entry points.

mod display;
mod lexer;
mod names;
mod parser;

use std::str::FromStr;

pub(crate) use self::lexer::Grammar;
pub(crate) use self::parser::Parser;
use crate::ast::Filter;
use crate::error::{ScimError, ScimResult};

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

#[cfg(test)]
mod tests;
