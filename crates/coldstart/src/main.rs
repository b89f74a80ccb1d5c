//! Cold-start harness: how long a Lambda bootstrap takes from process start
//! until it first polls the Lambda Runtime API for work.
//!
//! ```text
//! coldstart [--runs N] [--runner "CMD ARGS"] [--env K=V]... [--event NAME=FILE]... NAME=PATH...
//! ```
//!
//! For each run it serves a fake Runtime API on a loopback port, starts the
//! binary with a clean environment shaped like Lambda's (`AWS_LAMBDA_*`,
//! dummy credentials from the environment as on Lambda, a region, and the
//! table/secret names our functions need), and stops the clock when the
//! binary sends `GET /2018-06-01/runtime/invocation/next`: that is the end of
//! the function's init phase (Lambda's "Init Duration" measures the same
//! span, plus loading the package into the execution environment). The child
//! is then killed; no event is ever delivered and nothing leaves the machine.
//!
//! `--runner` prefixes the command, e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu`
//! to run an arm64 bootstrap on x86_64. The binaries take turns, so that a
//! change in the machine's load hits them alike; the first round is a
//! warm-up and is not counted (it pays for reading the file into the page
//! cache, which Lambda pays too but which a loop here would only pay once).
//!
//! With `--event NAME=FILE`, binary NAME is then handed FILE as its first
//! invocation, and a second clock stops when it posts the result (`/response`
//! or `/error`): the cold start as a caller sees it, init plus the first
//! request. AWS is replaced by a closed port on loopback
//! (`AWS_ENDPOINT_URL=https://127.0.0.1:<port>`, `AWS_MAX_ATTEMPTS=1`): a
//! request that needs DynamoDB or Secrets Manager builds its SDK client and
//! TLS configuration (root certificates included), which our functions defer
//! to the first request, then fails at once to connect. That span is what
//! deferring costs the first request, without a network's round trips.
//!
//! Prints one line per binary: size, runs, min/median/p90/max init time, the
//! process's peak RSS when it first polled (`VmHWM`; under a runner that is
//! the emulator's RSS, not the function's), and the median and p90 of the
//! first response (`-` without an event).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const NEXT_INVOCATION: &str = "GET /2018-06-01/runtime/invocation/next ";
const INVOCATION_RESULT: &str = "POST /2018-06-01/runtime/invocation/coldstart-1/";
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_micros(50);

#[derive(Debug)]
struct Options {
    runs: usize,
    runner: Vec<String>,
    env: Vec<(String, String)>,
    /// The first invocation's payload, by binary name.
    events: Vec<(String, Vec<u8>)>,
    binaries: Vec<(String, PathBuf)>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    init: Duration,
    peak_rss_kib: Option<u64>,
    /// From process start until the first invocation's result was posted.
    first_response: Option<Duration>,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("coldstart: {e}");
            eprintln!(
                "usage: coldstart [--runs N] [--runner \"CMD ARGS\"] [--env K=V]... [--event NAME=FILE]... NAME=PATH..."
            );
            return ExitCode::from(2);
        }
    };
    println!(
        "{:<18} {:>9} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "binary",
        "size KiB",
        "runs",
        "min ms",
        "p50 ms",
        "p90 ms",
        "max ms",
        "RSS MiB",
        "1st p50",
        "1st p90"
    );
    match measure(&options) {
        Ok(samples) => {
            for ((name, path), samples) in options.binaries.iter().zip(&samples) {
                print_row(name, path, samples);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("coldstart: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        runs: 20,
        runner: Vec::new(),
        env: Vec::new(),
        events: Vec::new(),
        binaries: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                let value = args.next().ok_or("--runs needs a value")?;
                options.runs = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--runs: not a positive number: {value}"))?;
            }
            "--runner" => {
                let value = args.next().ok_or("--runner needs a value")?;
                options.runner = value.split_whitespace().map(str::to_owned).collect();
            }
            "--env" => {
                let value = args.next().ok_or("--env needs K=V")?;
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--env: expected K=V, got {value}"))?;
                options.env.push((k.to_owned(), v.to_owned()));
            }
            "--event" => {
                let value = args.next().ok_or("--event needs NAME=FILE")?;
                let (name, file) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--event: expected NAME=FILE, got {value}"))?;
                let payload =
                    std::fs::read(file).map_err(|e| format!("--event {name}: {file}: {e}"))?;
                options.events.push((name.to_owned(), payload));
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other => {
                let (name, path) = other
                    .split_once('=')
                    .ok_or_else(|| format!("expected NAME=PATH, got {other}"))?;
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(format!("{name}: no such file {}", path.display()));
                }
                options.binaries.push((name.to_owned(), path));
            }
        }
    }
    if options.binaries.is_empty() {
        return Err("no binary given".into());
    }
    if let Some((name, _)) = options
        .events
        .iter()
        .find(|(name, _)| !options.binaries.iter().any(|(b, _)| b == name))
    {
        return Err(format!("--event {name}: no such binary"));
    }
    Ok(options)
}

/// Runs every binary `runs` times, round-robin (binary A, B, C, A, B, C, ...)
/// so that a change in the machine's load affects all of them alike.
fn measure(options: &Options) -> Result<Vec<Vec<Sample>>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("listener: {e}"))?
        .port();
    let stderr_path = std::env::temp_dir().join(format!("coldstart-{}.stderr", std::process::id()));
    let mut samples = vec![Vec::with_capacity(options.runs); options.binaries.len()];
    // Run 0 is a warm-up, not counted.
    for run in 0..=options.runs {
        for ((name, path), samples) in options.binaries.iter().zip(&mut samples) {
            let sample = measure_once(options, name, path, &listener, port, &stderr_path)
                .map_err(|e| format!("{name}: {e}"))?;
            if run > 0 {
                samples.push(sample);
            }
        }
    }
    let _ = std::fs::remove_file(&stderr_path);
    Ok(samples)
}

fn measure_once(
    options: &Options,
    name: &str,
    path: &Path,
    listener: &TcpListener,
    port: u16,
    stderr_path: &Path,
) -> Result<Sample, String> {
    let stderr = std::fs::File::create(stderr_path).map_err(|e| format!("stderr file: {e}"))?;
    let (program, args) = match options.runner.split_first() {
        Some((runner, runner_args)) => {
            let mut args: Vec<&std::ffi::OsStr> =
                runner_args.iter().map(std::ffi::OsStr::new).collect();
            args.push(path.as_os_str());
            (std::ffi::OsStr::new(runner.as_str()), args)
        }
        None => (path.as_os_str(), Vec::new()),
    };
    let event = options
        .events
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, payload)| payload.as_slice());
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(lambda_environment(name, port))
        .envs(event.map(|_| aws_unreachable()).into_iter().flatten())
        .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(path.parent().unwrap_or_else(|| Path::new(".")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);

    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
    let result =
        wait_for_first_poll(&mut child, listener, started).and_then(
            |(sample, stream)| match event {
                None => Ok(sample),
                Some(payload) => Ok(Sample {
                    first_response: Some(first_response(
                        &mut child, listener, stream, payload, name, started,
                    )?),
                    ..sample
                }),
            },
        );
    let _ = child.kill();
    let _ = child.wait();
    result.map_err(|e| {
        let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
        format!("{e}; its stderr:\n{stderr}")
    })
}

/// Fails once the child has exited, or the run has taken too long, before
/// `what` happened; otherwise waits one poll interval.
fn still_waiting(child: &mut Child, started: Instant, what: &str) -> Result<(), String> {
    if let Ok(Some(status)) = child.try_wait() {
        return Err(format!("exited ({status}) before {what}"));
    }
    if started.elapsed() > RUN_TIMEOUT {
        return Err(format!("no {what} within {RUN_TIMEOUT:?}"));
    }
    std::thread::sleep(POLL_INTERVAL);
    Ok(())
}

fn wait_for_first_poll(
    child: &mut Child,
    listener: &TcpListener,
    started: Instant,
) -> Result<(Sample, TcpStream), String> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let request_line = read_request_line(&mut stream)?;
                let init = started.elapsed();
                if !request_line.starts_with(NEXT_INVOCATION) {
                    return Err(format!(
                        "first request was {request_line:?}, not {NEXT_INVOCATION:?}"
                    ));
                }
                let sample = Sample {
                    init,
                    peak_rss_kib: peak_rss_kib(child.id()),
                    first_response: None,
                };
                return Ok((sample, stream));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("accept: {e}")),
        }
        still_waiting(child, started, "a poll of the Runtime API")?;
    }
}

/// Hands `payload` to the function as its first invocation (the answer to
/// its first poll, on `stream`) and waits until it posts the result, on that
/// connection or a new one. Returns the time since `started`.
fn first_response(
    child: &mut Child,
    listener: &TcpListener,
    mut stream: TcpStream,
    payload: &[u8],
    name: &str,
    started: Instant,
) -> Result<Duration, String> {
    let deadline_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        + RUN_TIMEOUT.as_millis();
    let head = format!(
        "HTTP/1.1 200 OK\r\n\
         content-type: application/json\r\n\
         lambda-runtime-aws-request-id: coldstart-1\r\n\
         lambda-runtime-deadline-ms: {deadline_ms}\r\n\
         lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:coldstart-{name}\r\n\
         lambda-runtime-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0\r\n\
         content-length: {}\r\n\r\n",
        payload.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(payload))
        .map_err(|e| format!("deliver the event: {e}"))?;
    // The runtime may post on the kept-alive connection or open another.
    stream
        .set_nonblocking(true)
        .map_err(|e| format!("stream: {e}"))?;
    let mut connections = vec![(stream, Vec::new())];
    loop {
        if let Ok((s, _)) = listener.accept() {
            s.set_nonblocking(true)
                .map_err(|e| format!("stream: {e}"))?;
            connections.push((s, Vec::new()));
        }
        for (s, buf) in &mut connections {
            let mut chunk = [0_u8; 1024];
            match s.read(&mut chunk) {
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("read the result: {e}")),
            }
            if let Some(line) = request_line_of(buf) {
                let elapsed = started.elapsed();
                return if line.starts_with(INVOCATION_RESULT)
                    && (line.contains("/response ") || line.contains("/error "))
                {
                    Ok(elapsed)
                } else {
                    Err(format!("after the event, the function sent {line:?}"))
                };
            }
        }
        still_waiting(child, started, "a posted result")?;
    }
}

/// The request line of `buf`, once it holds all of it.
fn request_line_of(buf: &[u8]) -> Option<String> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// AWS as a closed port on loopback: every SDK request fails at once, after
/// the client and its TLS configuration are built.
fn aws_unreachable() -> Vec<(String, String)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(9, |a| a.port());
    vec![
        (
            "AWS_ENDPOINT_URL".to_owned(),
            format!("https://127.0.0.1:{port}"),
        ),
        ("AWS_MAX_ATTEMPTS".to_owned(), "1".to_owned()),
    ]
}

/// Reads up to the end of the request head (the body, if any, is not
/// needed) and returns the request line.
fn read_request_line(stream: &mut TcpStream) -> Result<String, String> {
    stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(RUN_TIMEOUT)))
        .map_err(|e| format!("stream: {e}"))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0_u8; 256];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("read request: {e}"))?;
        if n == 0 {
            return Err("connection closed before a request line".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(request_line_of(&buf).unwrap_or_default())
}

/// The environment Lambda gives a `provided.al2023` function, with dummy
/// credentials (never used: nothing is invoked) and our functions' settings.
fn lambda_environment(name: &str, port: u16) -> Vec<(String, String)> {
    let function = format!("coldstart-{name}");
    [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", function.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]coldstart".into(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "ASIACOLDSTARTDUMMY".into()),
        ("AWS_SECRET_ACCESS_KEY", "coldstart-dummy-secret".into()),
        ("AWS_SESSION_TOKEN", "coldstart-dummy-session".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("_HANDLER", "bootstrap".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin".into()),
        ("RUST_LOG", "info".into()),
        // What the SAM template sets for our functions.
        ("DIRECTORY_TABLE", "coldstart-directory".into()),
        ("MEMBERS_TABLE", "coldstart-members".into()),
        ("TOKEN_SECRET_PREFIX", "scimsync/coldstart/tenants/".into()),
        // The portal's and the sync's own variables.
        (
            "PORTAL_SESSION_SECRET",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:scimsync/coldstart/portal/session-key-AbCdEf".into(),
        ),
        ("SYNC_FUNCTION_NAME", "coldstart-sync".into()),
        ("SYNC_SCHEDULE", "cron(0 3 * * ? *)".into()),
        ("APP_NAME", "coldstart".into()),
        ("EVENT_BUS_NAME", "coldstart-bus".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn print_row(name: &str, path: &Path, samples: &[Sample]) {
    let mut ms: Vec<f64> = samples
        .iter()
        .map(|s| s.init.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| percentile(&ms, q);
    let mut rss: Vec<u64> = samples.iter().filter_map(|s| s.peak_rss_kib).collect();
    rss.sort_unstable();
    let rss_mib = rss
        .get(rss.len() / 2)
        .map_or_else(|| "-".to_owned(), |k| format!("{:.1}", *k as f64 / 1024.0));
    let size_kib = std::fs::metadata(path).map_or(0, |m| m.len()) / 1024;
    let mut first: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.first_response)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    first.sort_by(f64::total_cmp);
    let (first_p50, first_p90) = if first.is_empty() {
        ("-".to_owned(), "-".to_owned())
    } else {
        (
            format!("{:.2}", percentile(&first, 0.5)),
            format!("{:.2}", percentile(&first, 0.9)),
        )
    };
    println!(
        "{name:<18} {size_kib:>9} {:>5} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {rss_mib:>8} {first_p50:>9} {first_p90:>9}",
        ms.len(),
        ms[0],
        at(0.5),
        at(0.9),
        ms[ms.len() - 1],
    );
}

/// Nearest-rank percentile of sorted, non-empty `values`.
fn percentile(values: &[f64], q: f64) -> f64 {
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}
