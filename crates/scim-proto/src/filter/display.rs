//! Canonical filter text: lowercase operators, JSON-quoted strings and only
//! the parentheses needed, so that printing and parsing round-trip. Changes
//! when the canonical form (or a new AST node) changes.

use std::fmt::{self, Write};

use crate::ast::{AttrTest, CompValue, Filter};

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

pub(super) fn write_json_string(f: &mut impl Write, s: &str) -> fmt::Result {
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
