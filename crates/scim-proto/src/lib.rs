//! SCIM 2.0 protocol, as Microsoft Entra ID speaks it. No I/O.
//!
//! Layout:
//! - [`error`]: `ScimError` and its RFC 7644 §3.12 body.
//! - [`schema`]: the User, EnterpriseUser and Group schemas as static data.
//! - [`ast`]: typed filter and PATCH-path trees; [`filter`] and [`path`] parse
//!   them (with size and depth limits), [`eval`] evaluates filters on documents.
//!   - `filter/`: `lexer` (tokens, error positions), `parser` (the expression
//!     grammar and its caps), `names` (attribute paths, `[…]` value filters),
//!     `display` (canonical text); `mod.rs` holds the limits and entry points.
//! - [`resource`]: parsing client documents into canonical, typed resources.
//!   - `resource/`: `user` and `group` (typed validation), `canonical` (where
//!     each key goes), `coerce` (value types), `caps` (size limits), `wire`
//!     (`meta` and the rendered response).
//! - [`patch`]: the PATCH engine (both Entra dialects), applied on a copy.
//!   - `patch/`: `request` (body parsing, op casing), `limits` (values per
//!     request), `engine` (path resolution and dispatch), `pathless` (flattened
//!     keys and extension objects), `attr` (unfiltered attributes, manager),
//!     `filtered` (value-filter paths), `members` (group membership changes),
//!     `multi` (list rules: dedupe, listed removes, single primary), `coerce`
//!     (value normalisation), `keys` (case-insensitive keys); `mod.rs` holds
//!     `apply` and the engine's types.
//! - [`projection`]: `attributes` / `excludedAttributes`.
//! - [`list`]: paging parameters and `ListResponse`; [`sort`]: `sortBy` /
//!   `sortOrder`; [`search`]: the list request, from a query string or a
//!   `POST …/.search` body.
//! - [`discovery`]: `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`.
//! - [`ids`]: identifier newtypes.
//! - [`provider`]: which identity provider a `User-Agent` names.
//!
//! Unit tests sit beside the code they test (`patch/tests/` and
//! `filter/tests/` split by topic); property tests are in `tests/fuzz.rs`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Slicing a `str` by byte index panics inside a multi-byte character, and
// client text reaches every module: use `get`, `split_at_checked`,
// `strip_prefix` or `char_indices` instead.
#![deny(clippy::string_slice)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod ast;
pub mod discovery;
pub mod error;
pub mod eval;
pub mod filter;
pub mod ids;
pub mod list;
pub mod patch;
pub mod path;
pub mod projection;
pub mod provider;
pub mod resource;
pub mod schema;
pub mod search;
pub mod sort;

pub use error::{ScimError, ScimResult, ScimType};
