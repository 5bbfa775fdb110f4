//! Argon2id hashing on a bounded pool of low-priority threads, so a login flood can neither
//! exhaust memory nor starve the async runtime.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::{Mutex, mpsc};

use argon2::password_hash::{PasswordHash as PhcString, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Password;
use crate::secret::fill_random;

/// An Argon2id hash in PHC string form (parameters and salt included).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Rebuilds a hash read back from a store.
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for a store to persist.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    /// Memory in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Passes over memory (OWASP: 2).
    pub iterations: u32,
    /// Lanes (OWASP: 1).
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

/// Why the hasher could not run.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The configured parameters are outside what Argon2 accepts.
    #[error("invalid Argon2 parameters: {0}")]
    Parameters(String),
    /// Hashing failed internally or its worker could not run.
    #[error("password hashing failed")]
    Failed,
}

/// A hash to compute on the pool.
type Job = Box<dyn FnOnce() + Send>;

/// The threads that compute password hashes: a fixed number (so at most that many hashes hold
/// their memory at once), each below the request handlers' scheduling priority, so that a
/// login flood takes the CPU time checks leave over instead of delaying them.
struct HashPool {
    jobs: mpsc::Sender<Job>,
}

impl HashPool {
    fn start(threads: usize) -> Result<Self, HashError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{n}"))
                .spawn(move || {
                    lower_this_threads_priority();
                    loop {
                        // One idle worker waits in `recv` at a time; the lock is released
                        // before the job runs. The loop ends when the hasher is dropped.
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = next else { return };
                        // A panicking hash must not shrink the pool; its caller sees the
                        // dropped reply as a failure.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .map_err(|_| HashError::Failed)?;
        }
        Ok(Self { jobs })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        self.jobs.send(job).map_err(|_| HashError::Failed)?;
        result.await.map_err(|_| HashError::Failed)
    }
}

/// Puts the calling hashing thread below every request handler: on Linux SCHED_IDLE, so it runs
/// on CPU time nothing else wants and a handler that wakes up preempts it at once (measured
/// by `scripts/login-flood`); elsewhere the lowest priority the platform allows.
fn lower_this_threads_priority() {
    if let Err(err) = set_idle_priority() {
        tracing::warn!(error = %err, "password hashing runs at normal priority");
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_idle_priority() -> Result<(), thread_priority::Error> {
    use thread_priority::ThreadPriority;
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_idle_priority() -> Result<(), thread_priority::Error> {
    thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
}

/// Hashes and verifies passwords on a pool of `concurrency` low-priority threads.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    settings: Argon2Settings,
    // Why a fixed pool: each hash holds `memory_kib` of RAM for ~15 ms. Without a cap a login
    // flood allocates without bound; at normal priority it would also delay token checks.
    pool: Arc<HashPool>,
    // Verified for unknown users so they cost the same work as real ones.
    dummy_hash: Arc<String>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Builds a hasher; `concurrency` bounds simultaneous hashes (0 means the number of CPUs).
    pub fn new(settings: Argon2Settings, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|err| HashError::Parameters(err.to_string()))?;
        let concurrency = if concurrency == 0 {
            std::thread::available_parallelism().map(usize::from).unwrap_or(2)
        } else {
            concurrency
        };
        let mut dummy_password = Zeroizing::new([0u8; 32]);
        fill_random(dummy_password.as_mut());
        let dummy_hash = hash_with(&params, dummy_password.as_ref())?;
        let pool = Arc::new(HashPool::start(concurrency)?);
        Ok(Self { params, settings, pool, dummy_hash: Arc::new(dummy_hash) })
    }

    /// The parameters new hashes are made with.
    pub fn settings(&self) -> Argon2Settings {
        self.settings
    }

    /// Hashes a password with a fresh random salt.
    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let bytes = Zeroizing::new(password.as_bytes().to_vec());
        let params = self.params.clone();
        self.run(move || hash_with(&params, &bytes).map(PasswordHash)).await
    }

    /// Verifies a password against a stored hash, or against the dummy hash when there is no
    /// account, so that both paths cost one Argon2 computation. `false` for no account.
    pub async fn verify(&self, password: &Password, stored: Option<&PasswordHash>) -> Result<bool, HashError> {
        let bytes = Zeroizing::new(password.as_bytes().to_vec());
        let (phc, real) = match stored {
            Some(hash) => (hash.0.clone(), true),
            None => (self.dummy_hash.as_ref().clone(), false),
        };
        let matched = self.run(move || verify_phc(&phc, &bytes)).await?;
        Ok(real && matched)
    }

    /// Computes one Argon2id hash on the calling thread with the configured parameters and
    /// returns how long it took: the baseline `latchkey bench argon2` and the benches compare a
    /// login against.
    /// The baseline is the argon2 crate's plain `hash_password`, allocating its memory as
    /// usual.
    pub fn time_bare_hash(&self) -> Result<std::time::Duration, HashError> {
        let mut password = Zeroizing::new([0u8; 24]);
        fill_random(password.as_mut());
        let mut salt = [0u8; 16];
        fill_random(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|_| HashError::Failed)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let started = std::time::Instant::now();
        argon2.hash_password(password.as_ref(), &salt).map_err(|_| HashError::Failed)?;
        Ok(started.elapsed())
    }

    /// Whether a stored hash was made with other parameters than the current ones, so it
    /// should be replaced on the next successful login.
    pub fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        let Ok(parsed) = PhcString::new(&stored.0) else { return true };
        let Ok(params) = Params::try_from(&parsed) else { return true };
        parsed.algorithm.as_str() != "argon2id"
            || params.m_cost() != self.settings.memory_kib
            || params.t_cost() != self.settings.iterations
            || params.p_cost() != self.settings.parallelism
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        self.pool.run(work).await?
    }
}

thread_local! {
    // Why per thread: each hash needs `memory_kib` of working memory. Allocated afresh on every
    // call, a thread pays page faults for all of it each time (measured: a verify on tokio's
    // blocking pool took 1.4x a bare hash). Kept per hashing thread it is reused; the argon2
    // crate's `zeroize` feature wipes it after every hash. Bounded by threads x the largest cost.
    static WORKING_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2id of `password` and `salt` into `out`, in this thread's reused working memory.
fn argon2id_into(
    params: &Params,
    version: Version,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), HashError> {
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params.clone());
    WORKING_MEMORY
        .with(|cell| {
            let mut memory = cell.borrow_mut();
            let blocks = params.block_count();
            if memory.len() < blocks {
                memory.resize(blocks, Block::default());
            }
            argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        })
        .map_err(|_| HashError::Failed)
}

/// A new Argon2id PHC string (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`) with a random salt.
fn hash_with(params: &Params, password: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    let mut out = Zeroizing::new([0u8; 32]);
    argon2id_into(params, Version::V0x13, password, &salt, out.as_mut())?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out.as_ref()),
    ))
}

/// Verifies `password` against a PHC string, with the parameters the string records (so old
/// hashes keep verifying after the parameters are raised). Constant-time comparison.
fn verify_phc(phc: &str, password: &[u8]) -> Result<bool, HashError> {
    let parsed = PhcString::new(phc).map_err(|_| HashError::Failed)?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Ok(false);
    }
    let params = Params::try_from(&parsed).map_err(|_| HashError::Failed)?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).map_err(|_| HashError::Failed)?,
        None => Version::V0x13,
    };
    let mut salt_buf = [0u8; 64];
    let salt = parsed.salt.ok_or(HashError::Failed)?.decode_b64(&mut salt_buf).map_err(|_| HashError::Failed)?;
    let expected = parsed.hash.ok_or(HashError::Failed)?;
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    argon2id_into(&params, version, password, salt, &mut out)?;
    Ok(out.as_slice().ct_eq(expected.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        let settings = Argon2Settings { memory_kib: 256, iterations: 1, parallelism: 1 };
        PasswordHasher::new(settings, 2).unwrap_or_else(|err| panic!("{err}"))
    }

    fn new_password(raw: &str) -> Option<Password> {
        Password::parse_new(raw.to_owned(), "alice").ok()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_own_password_only() -> Result<(), HashError> {
        let hasher = cheap();
        let good = new_password("a long passphrase").ok_or(HashError::Failed)?;
        let bad = Password::parse_presented("another passphrase".into()).ok_or(HashError::Failed)?;
        let hash = hasher.hash(&good).await?;
        assert!(hasher.verify(&good, Some(&hash)).await?);
        assert!(!hasher.verify(&bad, Some(&hash)).await?);
        assert!(!hasher.verify(&good, None).await?, "no account never matches");
        assert!(!hasher.needs_rehash(&hash));
        Ok(())
    }

    #[test]
    fn hashes_interoperate_with_the_argon2_crates_own_phc_strings() -> Result<(), HashError> {
        use argon2::password_hash::PasswordVerifier as _;
        let params = Params::new(256, 1, 1, None).map_err(|_| HashError::Failed)?;
        let ours = hash_with(&params, b"a long passphrase")?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let parsed = PhcString::new(&ours).map_err(|_| HashError::Failed)?;
        assert!(argon2.verify_password(b"a long passphrase", &parsed).is_ok(), "the crate verifies ours");
        let salt = SaltString::encode_b64(b"0123456789abcdef").map_err(|_| HashError::Failed)?;
        let theirs = argon2.hash_password(b"a long passphrase", &salt).map_err(|_| HashError::Failed)?.to_string();
        assert!(verify_phc(&theirs, b"a long passphrase")?, "we verify the crate's");
        assert!(!verify_phc(&theirs, b"a long passphrasE")?);
        Ok(())
    }

    #[tokio::test]
    async fn hashes_made_with_other_parameters_need_a_rehash() -> Result<(), HashError> {
        let old = cheap();
        let password = new_password("a long passphrase").ok_or(HashError::Failed)?;
        let hash = old.hash(&password).await?;
        let settings = Argon2Settings { memory_kib: 512, iterations: 1, parallelism: 1 };
        let newer = PasswordHasher::new(settings, 1)?;
        assert!(newer.needs_rehash(&hash));
        assert!(newer.verify(&password, Some(&hash)).await?, "old hashes still verify");
        Ok(())
    }
}
