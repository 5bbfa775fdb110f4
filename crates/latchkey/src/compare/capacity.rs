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
            "session writes/s, at most",
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
                // A session writes once per interval while it is in use, and only a check finds it
                // in use: at most one write per session and interval, and per check.
                let writes = (live / write_every).min(checks);
                let redis_cores = (checks * work.redis_commands + writes) * redis_micros_per_request / 1e6;
                let shards = (memory / SHARD_MEMORY_BYTES).ceil().max((redis_cores).ceil()).max(1.0);
                table.push(vec![
                    format!("{:.0} M", live / 1e6),
                    format!("{:.0}k", checks / 1e3),
                    mode.to_owned(),
                    gigabytes(memory),
                    format!("{shards:.0} ({:.2}, {redis_cores:.2})", memory / SHARD_MEMORY_BYTES),
                    format!("{writes:.0}"),
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
    let formulas = "For L live sessions and C checks per second: Redis memory = L × r; session writes per second \
                    W = min(L / touch interval, C) for cookies and min(L / access-token lifetime, C) for tokens (a \
                    session in use writes once per interval, and is in use only when checked: an upper bound); Redis \
                    shards = max(⌈L × r / shard memory⌉, ⌈(C × q + W) × k / 10⁶⌉) (a shard runs requests on one \
                    core; a write taken as one request); sessions kept in PostgreSQL instead of Redis: L rows, L × p \
                    bytes, W writes a second; latchkey cores = C × c / 10⁶ (no headroom: add your own).";
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::scale::StoreWork;

    fn inputs() -> Inputs {
        let work = |redis_commands, redis_cpu_micros| StoreWork {
            rate: 1.0,
            latchkey_cpu_micros: 10.0,
            redis_commands,
            redis_cpu_micros,
            postgres_transactions: 0.0,
            postgres_cpu_micros: Some(1.0),
        };
        Inputs {
            cookie: ModeInputs { redis_bytes: 250.0, postgres_bytes: 800.0, latchkey_micros: 8.0 },
            token: ModeInputs { redis_bytes: 200.0, postgres_bytes: 700.0, latchkey_micros: 10.0 },
            scale: ScaleFigures { cookie: work(0.5, 1.0), cookie_uncached: work(1.0, 5.0), bearer: work(0.0, 0.1) },
            touch_interval: 60.0,
            access_ttl: 600.0,
        }
    }

    #[test]
    fn the_model_follows_its_formulas_from_the_measured_inputs() {
        let section = model(&inputs());
        let row = |live: &str, checks: &str, mode: &str| {
            section
                .table
                .iter()
                .find(|row| row[0] == live && row[1] == checks && row[2] == mode)
                .cloned()
                .expect("a row")
        };
        // 100 M cookie sessions × 250 B = 25 GB: two 24 GB shards; writes bounded by the 100k
        // checks; (100k checks × 0.5 requests + 100k writes) × 5 µs = 0.75 of a Redis core.
        assert_eq!(
            row("100 M", "100k", "cookie")[3..],
            ["25.00 GB", "2 (1.04, 0.75)", "100000", "100 M, 80.00 GB", "0.8"]
        );
        // 1 M token sessions: 0.2 GB, one shard; a refresh every 600 s each (1,667 a second,
        // 0.008 of a Redis core); 10k checks × 10 µs.
        assert_eq!(row("1 M", "10k", "token")[3..], ["0.20 GB", "1 (0.01, 0.01)", "1667", "1 M, 0.70 GB", "0.1"]);
        assert_eq!(section.table.len(), 1 + 3 * 2 * 2);
        assert!(section.method.contains("250 B (cookie) / 200 B (token)"), "{}", section.method);
    }
}
