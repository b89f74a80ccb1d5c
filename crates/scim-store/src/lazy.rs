//! AWS SDK clients built on first use.
//!
//! Building an SDK client parses its service's endpoint partitions (JSON and
//! regexes) and assembles its runtime plugins: on Lambda, done in `main`, that
//! was the largest part of our init above a bare function (BENCHMARKS.md).
//! Every store holds a [`LazyClient`], which dereferences to the client and
//! builds it the first time a request needs it, once per process.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

type Build<C> = Arc<dyn Fn() -> C + Send + Sync>;

/// An SDK client (`C`), built by its first dereference.
pub struct LazyClient<C> {
    cell: Arc<OnceLock<C>>,
    build: Build<C>,
}

impl<C> LazyClient<C> {
    /// A client that `build` makes when first used.
    pub fn new(build: impl Fn() -> C + Send + Sync + 'static) -> Self {
        Self {
            cell: Arc::new(OnceLock::new()),
            build: Arc::new(build),
        }
    }
}

impl<C: 'static> LazyClient<C> {
    /// The SDK client that `new` (a service's `Client::new`) makes from
    /// `sdk` when first used.
    pub fn from_sdk(sdk: &aws_config::SdkConfig, new: fn(&aws_config::SdkConfig) -> C) -> Self {
        let sdk = sdk.clone();
        Self::new(move || new(&sdk))
    }
}

impl<C: Clone + Send + Sync + 'static> From<C> for LazyClient<C> {
    /// A client built already (tests, tools).
    fn from(client: C) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(client.clone());
        Self {
            cell: Arc::new(cell),
            build: Arc::new(move || client.clone()),
        }
    }
}

impl<C> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        Self {
            cell: Arc::clone(&self.cell),
            build: Arc::clone(&self.build),
        }
    }
}

impl<C> Deref for LazyClient<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.cell.get_or_init(|| (self.build)())
    }
}

impl<C> fmt::Debug for LazyClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyClient")
            .field("built", &self.cell.get().is_some())
            .finish()
    }
}

/// The DynamoDB client of the stores.
pub type DynamoDb = LazyClient<aws_sdk_dynamodb::Client>;
/// The Secrets Manager client of the token store.
pub type SecretsManager = LazyClient<aws_sdk_secretsmanager::Client>;

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn a_client_is_built_once_on_first_use_and_shared_by_clones() {
        let built = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&built);
        let client = LazyClient::new(move || counter.fetch_add(1, Ordering::SeqCst) + 100);
        let copy = client.clone();
        assert_eq!(built.load(Ordering::SeqCst), 0, "nothing built before use");
        assert_eq!(*copy, 100);
        assert_eq!(*client, 100);
        assert_eq!(built.load(Ordering::SeqCst), 1);
    }
}
