//! Stopping cleanly on SIGTERM and SIGINT: Slurm (`scancel`, time limits, preemption) and
//! Kubernetes stop jobs with SIGTERM, a person with Ctrl-C. Without a handler the process dies
//! at once and loses up to a checkpoint's worth of work (10,000 records by default) silently.
//!
//! With [`super::Config::with_stop_on_signals`], the first signal only sets a flag: the job
//! finishes the batch in flight, checkpoints, logs what was saved and returns a report that
//! names the signal; the caller exits with [`StopSignal::exit_code`] (130 or 143, as a shell
//! reports a process killed by the signal). A second signal kills the process at once, for a
//! batch that takes too long.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::SigId;

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

/// The handlers of a run; unregistered when dropped, so the process's own handling returns.
pub(crate) struct Signals {
    caught: Arc<AtomicUsize>,
    ids: Vec<SigId>,
}

impl Signals {
    /// Registers the handlers, or none when `enabled` is false (the flag then never rises).
    pub(crate) fn install(enabled: bool) -> Result<Self, Error> {
        let caught = Arc::new(AtomicUsize::new(0));
        let mut signals = Self {
            caught: caught.clone(),
            ids: Vec::new(),
        };
        if !enabled {
            return Ok(signals);
        }
        let armed = Arc::new(AtomicBool::new(false));
        let io = |e| Error::io("install a handler for", "SIGTERM/SIGINT")(e);
        for signal in [SIGTERM, SIGINT] {
            // Order matters: the second signal finds the flag armed by the first and kills.
            let ids = [
                signal_hook::flag::register_conditional_default(signal, armed.clone()),
                signal_hook::flag::register_usize(signal, caught.clone(), signal as usize),
                signal_hook::flag::register(signal, armed.clone()),
            ];
            for id in ids {
                signals.ids.push(id.map_err(io)?);
            }
        }
        Ok(signals)
    }

    /// The signal received, if one was.
    pub(crate) fn caught(&self) -> Option<StopSignal> {
        match self.caught.load(Ordering::SeqCst) {
            0 => None,
            s if s == SIGINT as usize => Some(StopSignal::Interrupt),
            _ => Some(StopSignal::Terminate),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
