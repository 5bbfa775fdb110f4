//! The capacity model: what each mode needs for 1 M, 10 M and 100 M live sessions and 10k and
//! 100k checks per second, computed from this run's measurements by formulas the section
//! prints, each input named with the section that measured it.

use super::report::{Assertion, Section, Verdict};
use super::scale::ScaleFigures;

/// The measured inputs of the model, per mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModeInputs {
    /// Redis memory per session (Server state).
    pub(crate) redis_bytes: f64,
    /// PostgreSQL bytes per session, were sessions kept there (Server state).
    pub(crate) postgres_bytes: f64,
    /// latchkey CPU per check, µs (Server load: one instance on one core).
    pub(crate) latchkey_micros: f64,
}

/// Everything the model is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs {
    /// Cookie sessions.
    pub(crate) cookie: ModeInputs,
    /// Token sessions.
    pub(crate) token: ModeInputs,
    /// The stores' work per check (Scalability).
    pub(crate) scale: ScaleFigures,
    /// How often a cookie session in use writes its `last_seen_at`, seconds.
    pub(crate) touch_interval: f64,
    /// How often a token session in use refreshes (its access tokens' lifetime), seconds.
    pub(crate) access_ttl: f64,
}

/// The Redis memory one shard is given: an operator's choice, not a measurement (a 32 GB node
/// with room for forks and fragmentation).
const SHARD_MEMORY_BYTES: f64 = 24e9;

fn gigabytes(bytes: f64) -> String {
    format!("{:.2} GB", bytes / 1e9)
}

/// The section: inputs, formulas and the table.
pub(crate) fn model(inputs: &Inputs) -> Section {
    let scale = inputs.scale;
    // What one Redis request costs Redis: from the run where every check was one.
    let redis_micros_per_request =
        scale.cookie_uncached.redis_cpu_micros / scale.cookie_uncached.redis_commands.max(f64::MIN_POSITIVE);
    let modes = [
        ("cookie", inputs.cookie, scale.cookie, inputs.touch_interval),
        ("token", inputs.token, scale.bearer, inputs.access_ttl),
    ];
    let mut table = vec![
        [
            "live sessions",
            "checks/s",
            "mode",
            "Redis memory",
            "Redis shards (memory, CPU)",
            "session writes/s, all in use",
            "PostgreSQL instead: rows, size",
            "latchkey cores",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for live in [1e6, 1e7, 1e8] {
        for checks in [1e4, 1e5] {
            for (mode, measured, work, write_every) in modes {
                let memory = live * measured.redis_bytes;
                let redis_cores = checks * work.redis_commands * redis_micros_per_request / 1e6;
                let shards = (memory / SHARD_MEMORY_BYTES).ceil().max((redis_cores).ceil()).max(1.0);
                table.push(vec![
                    format!("{:.0} M", live / 1e6),
                    format!("{:.0}k", checks / 1e3),
                    mode.to_owned(),
                    gigabytes(memory),
                    format!("{shards:.0} ({:.2}, {redis_cores:.2})", memory / SHARD_MEMORY_BYTES),
                    format!("{:.0}", live / write_every),
                    format!("{:.0} M, {}", live / 1e6, gigabytes(live * measured.postgres_bytes)),
                    format!("{:.1}", checks * measured.latchkey_micros / 1e6),
                ]);
            }
        }
    }
    let inputs_text = format!(
        "Measured inputs (this run): Redis memory per session r = {:.0} B (cookie) / {:.0} B (token) and PostgreSQL \
         bytes per session p = {:.0} / {:.0} B (Server state, largest size); latchkey CPU per check c = {:.1} / {:.1} µs \
         (Server load: one instance on one core, caches on); Redis requests per check q = {:.4} / {:.4} \
         (Scalability, one instance, caches on) and Redis CPU per request k = {:.2} µs (Scalability: the run \
         without the instance's cache, {:.2} requests and {:.2} µs of Redis CPU per check). Settings (the defaults): a cookie session in use writes `last_seen_at` every {:.0} \
         s, a token session in use refreshes every {:.0} s (the access-token lifetime). An operator's choice, not a \
         measurement: {:.0} GB of Redis memory per shard.",
        inputs.cookie.redis_bytes,
        inputs.token.redis_bytes,
        inputs.cookie.postgres_bytes,
        inputs.token.postgres_bytes,
        inputs.cookie.latchkey_micros,
        inputs.token.latchkey_micros,
        scale.cookie.redis_commands,
        scale.bearer.redis_commands,
        redis_micros_per_request,
        scale.cookie_uncached.redis_commands,
        scale.cookie_uncached.redis_cpu_micros,
        inputs.touch_interval,
        inputs.access_ttl,
        SHARD_MEMORY_BYTES / 1e9,
    );
    let formulas = "For L live sessions and C checks per second: Redis memory = L × r; Redis shards = max(⌈L × r / \
                    shard memory⌉, ⌈C × q × k / 10⁶⌉) (a shard runs commands on one core); session writes per second, \
                    with every live session in use (an upper bound) = L / touch interval (cookie) or L / access-token \
                    lifetime (token); sessions kept in PostgreSQL instead of Redis: L rows, L × p bytes; latchkey \
                    cores = C × c / 10⁶ (no headroom: add your own).";
    let big = 1e8;
    let cookie_memory = big * inputs.cookie.redis_bytes;
    let token_memory = big * inputs.token.redis_bytes;
    let cores_cookie = 1e5 * inputs.cookie.latchkey_micros / 1e6;
    let cores_token = 1e5 * inputs.token.latchkey_micros / 1e6;
    Section {
        title: "Capacity model".into(),
        method: format!("{inputs_text}\n\n{formulas}"),
        table,
        charts: Vec::new(),
        assertions: vec![Assertion {
            claim:
                "\"적합한 환경: 사용자가 적은 내부 시스템 / 대규모 트래픽 서비스\", \"적합 환경: 금융, 내부 시스템 / \
                    대규모/모바일 서비스\" (sessions suit small internal systems; tokens suit large services)"
                    .into(),
            figure: format!(
                "by the model, 100 M live cookie sessions at 100k checks/s need {} of Redis and {cores_cookie:.1} \
                 latchkey cores; as many token sessions need {} and {cores_token:.1} cores",
                gigabytes(cookie_memory),
                gigabytes(token_memory)
            ),
            verdict: Verdict::DoesNotHold,
        }],
    }
}
