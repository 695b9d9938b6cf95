//! Stopping cleanly on SIGTERM and SIGINT: Slurm (`scancel`, time limits, preemption) and
//! Kubernetes stop jobs with SIGTERM, a person with Ctrl-C. Without a handler the process dies
//! at once and loses up to a checkpoint's worth of work (10,000 records by default) silently.
//!
//! With [`super::Config::with_stop_on_signals`], the first signal only sets a flag: the job
//! finishes the batch in flight, checkpoints, logs what was saved and returns a report that
//! names the signal; the caller exits with [`StopSignal::exit_code`] (130 or 143, as a shell
//! reports a process killed by the signal). A second signal kills the process at once, for a
//! batch that takes too long; outside a run the signals do what they do by default.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use signal_hook::consts::{SIGINT, SIGTERM};

use super::error::Error;

/// A signal that stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    #[serde(rename = "SIGINT")]
    Interrupt,
    /// SIGTERM (`kill`, `scancel`, Kubernetes).
    #[serde(rename = "SIGTERM")]
    Terminate,
}

impl StopSignal {
    /// The exit status a shell gives a process killed by this signal: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
        }
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        })
    }
}

/// Whether no run is handling signals: then the handlers do what the signal does by default.
static IDLE: AtomicBool = AtomicBool::new(true);
/// Set by the first signal of a run; a second one then does the default (kills).
static ARMED: AtomicBool = AtomicBool::new(false);
/// The first signal's number, 0 before one came.
static CAUGHT: AtomicUsize = AtomicUsize::new(0);
/// Runs in this process that handle signals now.
static RUNS: Mutex<usize> = Mutex::new(0);
/// The handlers, registered once per process and never removed: signal-hook cannot give back
/// the default action of a signal once it handled it, so outside a run they emulate it.
static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();

/// A run's claim on SIGTERM and SIGINT; the default actions return when the last one is
/// dropped. Concurrent runs in one process all stop on a signal (it is the process's).
pub(crate) struct Signals {
    enabled: bool,
}

impl Signals {
    /// Starts handling the signals for a run, or not when `enabled` is false (the flag then
    /// never rises).
    pub(crate) fn install(enabled: bool) -> Result<Self, Error> {
        if !enabled {
            return Ok(Self { enabled });
        }
        let registered = REGISTERED.get_or_init(|| {
            // Order matters: each action runs in turn, and emulating the default kills.
            for signal in [SIGTERM, SIGINT] {
                signal_hook::flag::register_conditional_default(signal, &IDLE)
                    .and_then(|_| signal_hook::flag::register_conditional_default(signal, &ARMED))
                    .and_then(|_| {
                        signal_hook::flag::register_usize(signal, &CAUGHT, signal as usize)
                    })
                    .and_then(|_| signal_hook::flag::register(signal, &ARMED))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        if let Err(e) = registered {
            return Err(Error::io("install a handler for", "SIGTERM/SIGINT")(
                std::io::Error::other(e.clone()),
            ));
        }
        let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        if *runs == 0 {
            CAUGHT.store(0, Ordering::SeqCst);
            ARMED.store(false, Ordering::SeqCst);
            IDLE.store(false, Ordering::SeqCst);
        }
        *runs += 1;
        Ok(Self { enabled })
    }

    /// The signal received, if one was.
    pub(crate) fn caught(&self) -> Option<StopSignal> {
        if !self.enabled {
            return None;
        }
        match CAUGHT.load(Ordering::SeqCst) {
            0 => None,
            s if s == SIGINT as usize => Some(StopSignal::Interrupt),
            _ => Some(StopSignal::Terminate),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if !self.enabled {
            return;
        }
        let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        *runs = runs.saturating_sub(1);
        if *runs == 0 {
            IDLE.store(true, Ordering::SeqCst);
        }
    }
}
