//! SCIM 2.0 protocol, as Microsoft Entra ID speaks it. No I/O.
//!
//! Layout:
//! - [`error`]: `ScimError` and its RFC 7644 §3.12 body.
//! - [`schema`]: the User, EnterpriseUser and Group schemas as static data.
//! - [`ast`]: typed filter and PATCH-path trees; [`filter`] and [`path`] parse
//!   them (with size and depth limits), [`eval`] evaluates filters on documents.
//! - [`resource`]: parsing client documents into canonical, typed resources.
//! - [`patch`]: the PATCH engine (both Entra dialects), applied on a copy.
//! - [`projection`]: `attributes` / `excludedAttributes`.
//! - [`list`]: paging parameters and `ListResponse`.
//! - [`discovery`]: `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`.
//! - [`ids`]: identifier newtypes.
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
pub mod resource;
pub mod schema;

pub use error::{ScimError, ScimResult, ScimType};
