//! `If-Match`: the version a client pinned for a write.

use scim_proto::ScimError;

/// The ETags a write is conditional on (`If-Match`), or none.
#[derive(Debug, Clone, Default)]
pub struct Precondition(Option<Vec<String>>);

impl Precondition {
    /// No precondition: writes retry lost races.
    pub fn none() -> Self {
        Self(None)
    }

    /// From an `If-Match` header value (a comma-separated ETag list or `*`).
    pub fn from_header(value: &str) -> Self {
        Self(Some(value.split(',').map(str::to_owned).collect()))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Checks the current ETag against the precondition (412 on mismatch).
    pub fn check(&self, current_etag: &str) -> Result<(), ScimError> {
        let Some(tags) = &self.0 else { return Ok(()) };
        let strip = |t: &str| {
            t.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_owned()
        };
        let current = strip(current_etag);
        if tags.iter().any(|t| t.trim() == "*" || strip(t) == current) {
            Ok(())
        } else {
            Err(ScimError::precondition_failed(
                "the resource has changed since it was read (If-Match does not match its ETag)",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_weak_strong_star_and_lists() {
        for header in ["W/\"3\"", "\"3\"", "*", "W/\"1\", W/\"3\""] {
            assert!(
                Precondition::from_header(header).check("W/\"3\"").is_ok(),
                "{header}"
            );
        }
        assert!(
            Precondition::from_header("W/\"2\"")
                .check("W/\"3\"")
                .is_err()
        );
        assert!(Precondition::none().check("W/\"3\"").is_ok());
    }
}
