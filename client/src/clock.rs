//! The clock the client reads: the system's by default, injectable for tests and for programs
//! that keep their own notion of time.

/// A source of the current time, in Unix seconds.
///
/// Any `Fn() -> i64 + Send + Sync` closure is a clock:
/// ```
/// use glpi_network_client::Clock;
/// let fixed = || 1_800_000_000_i64;
/// assert_eq!(fixed.now(), 1_800_000_000);
/// ```
pub trait Clock: Send + Sync {
    /// The current time in Unix seconds.
    fn now(&self) -> i64;
}

impl<F> Clock for F
where
    F: Fn() -> i64 + Send + Sync,
{
    fn now(&self) -> i64 {
        self()
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}
