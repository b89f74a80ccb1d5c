//! The load driver: sends requests to the router with bounded concurrency,
//! checks statuses, and turns latencies and DynamoDB request counts into
//! table rows. Changes when what is measured or reported per shape changes.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use futures::{StreamExt, stream};
use scim_store::metrics::RequestCounter;
use serde_json::Value;

pub(crate) struct Bench {
    pub(crate) base: String,
    pub(crate) token: String,
    pub(crate) http: reqwest::Client,
    pub(crate) counter: RequestCounter,
    pub(crate) concurrency: usize,
}

/// Latencies and DynamoDB requests of one request shape.
pub(crate) struct Sample {
    name: &'static str,
    latencies: Vec<Duration>,
    wall: Duration,
    dynamodb: u64,
}

impl Sample {
    pub(crate) fn row(&self) -> String {
        let mut l = self.latencies.clone();
        l.sort();
        let pct = |p: f64| {
            let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
            l[i].as_secs_f64() * 1000.0
        };
        let n = l.len() as f64;
        format!(
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            self.name,
            l.len(),
            n / self.wall.as_secs_f64(),
            pct(0.5),
            pct(0.95),
            pct(0.99),
            self.dynamodb as f64 / n
        )
    }
}

impl Bench {
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes())?,
                format!("{}{path}", self.base),
            )
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json; charset=utf-8")
                .body(serde_json::to_vec(&b)?);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)?
        };
        Ok((status, body))
    }

    /// Runs `make(i)` for `i in 0..n` with bounded concurrency, checking each
    /// status is `expect`.
    pub(crate) async fn run<F>(
        &self,
        name: &'static str,
        n: usize,
        expect: u16,
        make: F,
    ) -> Result<(Sample, Vec<Value>)>
    where
        F: Fn(usize) -> (&'static str, String, Option<Value>),
    {
        self.counter.take();
        let start = Instant::now();
        let results: Vec<Result<(Duration, Value)>> = stream::iter(0..n)
            .map(|i| {
                let (method, path, body) = make(i);
                async move {
                    let t = Instant::now();
                    let (status, body) = self.send(method, &path, body).await?;
                    ensure!(
                        status == expect,
                        "{name}: got {status}, expected {expect}: {body}"
                    );
                    Ok((t.elapsed(), body))
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let wall = start.elapsed();
        let mut latencies = Vec::with_capacity(n);
        let mut bodies = Vec::with_capacity(n);
        for r in results {
            let (l, b) = r?;
            latencies.push(l);
            bodies.push(b);
        }
        let dynamodb = self.counter.take_total();
        Ok((
            Sample {
                name,
                latencies,
                wall,
                dynamodb,
            },
            bodies,
        ))
    }
}
