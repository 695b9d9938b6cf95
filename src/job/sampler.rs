//! Samples of the machine's state while the job runs: this process's CPU and memory and, when
//! the NVIDIA driver is present, the GPU's utilization, memory and temperature.
//!
//! NVML is opened at run time (`libnvidia-ml.so` through `nvml-wrapper`), so building needs no
//! CUDA and a machine without a GPU simply has no GPU line. NVML numbers GPUs by PCI order and
//! ignores `CUDA_VISIBLE_DEVICES`; inside a container that sees one GPU (Kubernetes, Slurm with
//! GRES) both orders agree.

use std::fmt;

use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::Nvml;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One reading of the GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GpuSample {
    pub utilization_percent: u32,
    pub memory_used: u64,
    pub memory_total: u64,
    pub temperature_c: u32,
}

/// One reading of the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sample {
    /// This process's CPU use, in percent of one core (400 = four cores busy).
    pub cpu_percent: f32,
    /// This process's resident memory, bytes.
    pub rss: u64,
    pub gpu: Option<GpuSample>,
}

/// Takes [`Sample`]s; lives on the sampler thread.
pub(crate) struct Sampler {
    system: System,
    pid: Option<Pid>,
    nvml: Option<(Nvml, u32)>,
}

impl Sampler {
    /// A sampler for this process and, if `gpu` names one and NVML loads, that GPU.
    pub(crate) fn new(gpu: Option<u32>) -> Self {
        let nvml = gpu.and_then(|index| match Nvml::init() {
            Ok(nvml) => Some((nvml, index)),
            Err(e) => {
                tracing::info!(error = %e, "NVML unavailable; no GPU statistics");
                None
            }
        });
        Self {
            system: System::new(),
            pid: sysinfo::get_current_pid().ok(),
            nvml,
        }
    }

    /// Reads the machine now. CPU use is averaged since the previous call.
    pub(crate) fn sample(&mut self) -> Sample {
        let mut sample = Sample::default();
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                false,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            if let Some(process) = self.system.process(pid) {
                sample.cpu_percent = process.cpu_usage();
                sample.rss = process.memory();
            }
        }
        if let Some((nvml, index)) = &self.nvml {
            sample.gpu = nvml.device_by_index(*index).ok().and_then(|device| {
                let memory = device.memory_info().ok()?;
                Some(GpuSample {
                    utilization_percent: device.utilization_rates().map_or(0, |u| u.gpu),
                    memory_used: memory.used,
                    memory_total: memory.total,
                    temperature_c: device.temperature(TemperatureSensor::Gpu).unwrap_or(0),
                })
            });
        }
        sample
    }
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CPU {:.0}% RAM {}", self.cpu_percent, gib(self.rss))?;
        if let Some(gpu) = &self.gpu {
            write!(
                f,
                " GPU {}% {}/{} {}°C",
                gpu.utilization_percent,
                gib(gpu.memory_used),
                gib(gpu.memory_total),
                gpu.temperature_c
            )?;
        }
        Ok(())
    }
}

fn gib(bytes: u64) -> String {
    if bytes < 1 << 30 {
        format!("{}MiB", bytes >> 20)
    } else {
        format!("{:.1}GiB", bytes as f64 / (1u64 << 30) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process_and_formats_the_gpu() {
        let mut sampler = Sampler::new(None);
        let sample = sampler.sample();
        assert!(sample.rss > 0, "{sample:?}");
        assert!(sample.gpu.is_none());
        let with_gpu = Sample {
            cpu_percent: 150.0,
            rss: 300 << 20,
            gpu: Some(GpuSample {
                utilization_percent: 87,
                memory_used: 20 << 30,
                memory_total: 80 << 30,
                temperature_c: 64,
            }),
        };
        assert_eq!(
            with_gpu.to_string(),
            "CPU 150% RAM 300MiB GPU 87% 20.0GiB/80.0GiB 64°C"
        );
    }
}
