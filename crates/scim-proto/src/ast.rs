//! Typed syntax trees for SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths
//! (§3.5.2), shared by the parser (`filter`, `path`), the evaluator and the
//! PATCH engine. Attribute names keep the case the client wrote; comparisons
//! of names are case-insensitive everywhere (RFC 7643 §2.1).

use std::fmt;

/// `[urn ":"] attrName ["." subAttr]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// Schema URN when the client qualified the name, e.g.
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    pub fn simple(name: impl Into<String>) -> Self {
        Self {
            urn: None,
            name: name.into(),
            sub: None,
        }
    }

    pub fn with_sub(name: impl Into<String>, sub: impl Into<String>) -> Self {
        Self {
            urn: None,
            name: name.into(),
            sub: Some(sub.into()),
        }
    }

    /// True when this path names `name` (and no sub-attribute) in the core schema
    /// or in `urn`, ignoring case.
    pub fn is(&self, name: &str) -> bool {
        self.sub.is_none() && self.name.eq_ignore_ascii_case(name)
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// Comparison operators. `pr` is [`AttrTest::Present`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Null,
}

/// What is asked of one attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrTest {
    Present,
    Compare(CompareOp, CompValue),
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath op value` or `attrPath pr`.
    Attr {
        path: AttrPath,
        test: AttrTest,
    },
    /// `attr[valFilter]`, optionally followed by `.sub op value` (the form
    /// Entra sends when matching on email: `emails[type eq "work"].value eq "x"`).
    /// `path.sub` is always `None`; the filter inside is relative to the
    /// elements of `path`.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
        sub: Option<(String, AttrTest)>,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

/// A PATCH operation's target (RFC 7644 §3.5.2 `PATH`).
///
/// - `userName`, `name.givenName`, `urn:…:User:manager`: `attr` only.
/// - `members[value eq "x"]`: `attr` + `filter`.
/// - `emails[type eq "work"].value`: `attr` + `filter` + `sub`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// Sub-attribute after a value filter. `attr.sub` is `None` whenever
    /// `filter` is set.
    pub sub: Option<String>,
}
