//! Load: many keep-alive HTTP/1.1 connections sending one request after another to one or
//! more instances, counting the answers, and the CPU time the instances spent meanwhile (read
//! from `/proc`, so it is the server's own cost whatever the load generator costs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;

use super::CompareError;

/// What each request carries.
#[derive(Clone)]
pub(crate) struct Credentials {
    /// The header that carries them (`cookie`, `authorization`), if any.
    pub(crate) header: Option<HeaderName>,
    /// The values, taken in turn.
    pub(crate) values: Arc<Vec<HeaderValue>>,
    /// Whether each value is sent once only (the run ends when they are used up): every request
    /// then presents a credential the server has not seen.
    pub(crate) once: bool,
}

impl Credentials {
    /// No credential.
    pub(crate) fn none() -> Self {
        Self { header: None, values: Arc::new(Vec::new()), once: false }
    }

    /// One value, sent with every request.
    pub(crate) fn always(header: &'static str, value: &str) -> Result<Self, CompareError> {
        Ok(Self {
            header: Some(HeaderName::from_static(header)),
            values: Arc::new(vec![header_value(value)?]),
            once: false,
        })
    }

    /// Each value sent once.
    pub(crate) fn each_once(header: &'static str, values: &[String]) -> Result<Self, CompareError> {
        let values = values.iter().map(|value| header_value(value)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { header: Some(HeaderName::from_static(header)), values: Arc::new(values), once: true })
    }
}

fn header_value(value: &str) -> Result<HeaderValue, CompareError> {
    HeaderValue::from_str(value).map_err(|_| CompareError::Run("a credential is not a header value".into()))
}

/// One load run: where, what, how hard and how long.
pub(crate) struct LoadRun<'a> {
    /// The addresses connections are spread over (round robin).
    pub(crate) targets: &'a [SocketAddr],
    /// The path requested (`GET`).
    pub(crate) path: &'a str,
    /// What each request carries.
    pub(crate) credentials: Credentials,
    /// Connections open at once.
    pub(crate) connections: usize,
    /// How long it runs (shorter when credentials sent once are used up).
    pub(crate) duration: Duration,
    /// The processes whose CPU time is the cost being measured.
    pub(crate) servers: &'a [u32],
}

/// What a load run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Throughput {
    /// Answers received (every one a success).
    pub(crate) requests: u64,
    /// From the first request to the last answer.
    pub(crate) elapsed: Duration,
    /// CPU time the servers spent meanwhile.
    pub(crate) server_cpu: Duration,
}

impl Throughput {
    /// Answers per second.
    pub(crate) fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

impl LoadRun<'_> {
    /// Runs the load; fails if any answer is not a success.
    pub(crate) async fn run(&self) -> Result<Throughput, CompareError> {
        let next = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let cpu_before = cpu_time(self.servers)?;
        let started = Instant::now();
        let mut connections = Vec::with_capacity(self.connections);
        for index in 0..self.connections {
            let target = self.targets[index % self.targets.len().max(1)];
            let (credentials, path, next, stop) =
                (self.credentials.clone(), self.path.to_owned(), next.clone(), stop.clone());
            connections.push(tokio::spawn(async move { connection(target, &path, &credentials, &next, &stop).await }));
        }
        let deadline = tokio::time::sleep(self.duration);
        tokio::pin!(deadline);
        let mut requests = 0;
        let mut failure = None;
        let mut remaining = connections.len();
        let mut connections = futures_util::stream::FuturesUnordered::from_iter(connections);
        use futures_util::StreamExt;
        loop {
            tokio::select! {
                () = &mut deadline, if !stop.load(Ordering::Relaxed) => stop.store(true, Ordering::Relaxed),
                done = connections.next(), if remaining > 0 => {
                    remaining -= 1;
                    match done {
                        Some(Ok(Ok(count))) => requests += count,
                        Some(Ok(Err(err))) => { stop.store(true, Ordering::Relaxed); failure = Some(err) }
                        Some(Err(err)) => { stop.store(true, Ordering::Relaxed); failure = Some(CompareError::Run(err.to_string())) }
                        None => {}
                    }
                }
                else => break,
            }
            if remaining == 0 {
                break;
            }
        }
        let elapsed = started.elapsed();
        let server_cpu = cpu_time(self.servers)?.saturating_sub(cpu_before);
        match failure {
            Some(err) => Err(err),
            None => Ok(Throughput { requests, elapsed, server_cpu }),
        }
    }
}

/// One connection's requests until `stop` (or the credentials sent once are used up); how many
/// were answered.
async fn connection(
    target: SocketAddr,
    path: &str,
    credentials: &Credentials,
    next: &AtomicUsize,
    stop: &AtomicBool,
) -> Result<u64, CompareError> {
    let failed =
        |what: &str, err: &dyn std::fmt::Display| CompareError::Run(format!("load on {target}: {what}: {err}"));
    let host = HeaderValue::from_str(&target.to_string()).map_err(|err| failed("host", &err))?;
    let mut answered = 0;
    // A proxy closes a keep-alive connection after so many requests (nginx: 1,000), as a
    // browser's would be: the connection is then opened again, as clients do.
    while !stop.load(Ordering::Relaxed) {
        let stream = tokio::net::TcpStream::connect(target).await.map_err(|err| failed("connecting", &err))?;
        stream.set_nodelay(true).map_err(|err| failed("connecting", &err))?;
        let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| failed("handshake", &err))?;
        tokio::spawn(driver);
        while !stop.load(Ordering::Relaxed) {
            if sender.ready().await.is_err() {
                break;
            }
            let mut request = Request::get(path).header(hyper::header::HOST, host.clone());
            if let Some(header) = &credentials.header {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let value = if credentials.once {
                    match credentials.values.get(index) {
                        Some(value) => value,
                        None => return Ok(answered),
                    }
                } else {
                    &credentials.values[index % credentials.values.len().max(1)]
                };
                request = request.header(header, value.clone());
            }
            let request = request.body(Empty::<Bytes>::new()).map_err(|err| failed("a request", &err))?;
            let response = match sender.send_request(request).await {
                Ok(response) => response,
                // Closed by the server between two requests: open another.
                Err(err) if err.is_closed() || err.is_canceled() || err.is_incomplete_message() => break,
                Err(err) => return Err(failed("a request", &err)),
            };
            let status = response.status();
            response.into_body().collect().await.map_err(|err| failed("an answer", &err))?;
            if !status.is_success() {
                return Err(CompareError::Run(format!("load on {target}{path}: answered {status}")));
            }
            answered += 1;
        }
    }
    Ok(answered)
}

/// The CPU time (user and system) the processes `pids` have used so far, from `/proc`.
pub(crate) fn cpu_time(pids: &[u32]) -> Result<Duration, CompareError> {
    let ticks_per_second = clock_ticks();
    let mut ticks = 0_u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|err| CompareError::Run(format!("the CPU time of process {pid}: {err}")))?;
        ticks += cpu_ticks(&stat);
    }
    Ok(Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64))
}

/// The CPU time (user and system) that every process of this machine named `command` (as
/// `/proc/PID/comm` has it) has used so far; `None` when there is none (the server runs
/// elsewhere). Processes that ended meanwhile are not counted.
pub(crate) fn cpu_time_of_command(command: &str) -> Option<Duration> {
    let mut ticks = 0_u64;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        let is_it = std::fs::read_to_string(path.join("comm")).is_ok_and(|comm| comm.trim_end() == command);
        if let (true, Ok(stat)) = (is_it, std::fs::read_to_string(path.join("stat"))) {
            found = true;
            ticks += cpu_ticks(&stat);
        }
    }
    found.then(|| Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// User and system time, in clock ticks, from a `/proc/PID/stat` line.
fn cpu_ticks(stat: &str) -> u64 {
    // The command name may hold spaces and parentheses: the fields counted are those after its
    // last ')'. utime and stime are fields 14 and 15 of proc(5), the 12th and 13th after it.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default().split_whitespace().collect();
    [11, 12].iter().filter_map(|&field| fields.get(field).and_then(|value| value.parse::<u64>().ok())).sum()
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// The cores this process may run on, as it started (pinning narrows what the standard library
/// reports afterwards, so the first answer is kept).
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map(usize::from).unwrap_or(1))
}

/// Pins this process (every thread) to `cpus` with `taskset`, where there is one and more than
/// one core; whether it did.
pub(crate) fn pin_self(cpus: &str) -> bool {
    pin(std::process::id(), cpus)
}

/// Gives this process every core it started with again.
pub(crate) fn unpin_self() {
    pin_self(&format!("0-{}", cores() - 1));
}

/// Pins process `pid` (every thread) to `cpus` (`taskset -a -cp`).
pub(crate) fn pin(pid: u32, cpus: &str) -> bool {
    if cores() < 2 {
        return false;
    }
    std::process::Command::new("taskset")
        .args(["-a", "-cp", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 123 456 789";
        assert_eq!(cpu_ticks(stat), 325);
        assert_eq!(cpu_ticks("garbage"), 0);
    }

    #[test]
    fn the_cpu_time_of_this_process_grows_while_it_computes() {
        let spent = cpu_time(&[std::process::id()]).expect("this process's stat");
        let started = std::time::Instant::now();
        let mut sum = 0_u64;
        while cpu_time(&[std::process::id()]).expect("stat") <= spent {
            sum = (0..100_000_u64).fold(sum, |sum, n| sum.wrapping_add(n.wrapping_mul(n)));
            assert!(started.elapsed() < Duration::from_secs(10), "no CPU time counted after 10 s of work ({sum})");
        }
    }
}
