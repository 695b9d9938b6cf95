//! Which part of the input a process embeds: `--shard I/N`, a Kubernetes Indexed Job or a Slurm
//! array.
//!
//! A record belongs to shard `shard_key(id_hash(id)) % N` (see [`super::hash`]): decided by its
//! id alone, never by its position, so shards stay disjoint and complete however the input is
//! ordered, and a resumed shard finds its own records again.

use std::fmt;

use super::error::Error;
use super::hash::{id_hash, shard_key};

/// One of `count` disjoint parts of the input; `Shard::ALL` is the whole input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// The whole input, unsharded.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count` (0-based).
    pub fn new(index: u32, count: u32) -> Result<Self, Error> {
        if count == 0 || index >= count {
            return Err(Error::InvalidShard {
                spec: format!("{index}/{count}"),
                reason: "needs 0 <= index < count".into(),
            });
        }
        Ok(Self { index, count })
    }

    /// This shard's 0-based index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards the input is split into.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The shard an id belongs to among `count`.
    pub fn of(id: &str, count: u32) -> u32 {
        Self::of_hash(id_hash(id), count)
    }

    pub(crate) fn of_hash(hash: u128, count: u32) -> u32 {
        (shard_key(hash) % u64::from(count.max(1))) as u32
    }

    /// Whether the record with this id hash is this shard's to embed.
    pub(crate) fn owns(&self, hash: u128) -> bool {
        self.count == 1 || Self::of_hash(hash, self.count) == self.index
    }

    /// Resolves `--shard` against the process environment; see [`Shard::resolve`].
    pub fn from_env(spec: Option<&str>) -> Result<Self, Error> {
        Self::resolve(spec, |name| std::env::var(name).ok())
    }

    /// Resolves a shard from an optional `--shard` value and environment variables (`env` looks
    /// one up by name).
    ///
    /// - `I/N`: shard `I` of `N`, whatever the environment says. The way to rerun one task of a
    ///   Slurm array (`sbatch --array=3` with `--shard "$SLURM_ARRAY_TASK_ID/8"`).
    /// - `auto/N`: the index from `JOB_COMPLETION_INDEX` (Kubernetes Indexed Job, which does not
    ///   expose the completion count) or `SLURM_ARRAY_TASK_ID` as is (0-based: `--array=0-7` for
    ///   8 shards, and `--array=3` reruns shard 3), the count `N`.
    /// - `auto`: index and count from a whole Slurm array: `SLURM_ARRAY_TASK_ID` minus
    ///   `SLURM_ARRAY_TASK_MIN` (so `--array=1-8` works as well as `0-7`), of
    ///   `SLURM_ARRAY_TASK_COUNT`. Refused in a one-task array, which does not say the count.
    /// - absent: `auto` inside a Slurm array; refused inside an Indexed Job (every pod would embed
    ///   everything into the same files), else the whole input.
    pub fn resolve(
        spec: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let invalid = |spec: &str, reason: &str| Error::InvalidShard {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let number = |spec: &str, what: &str, text: &str| -> Result<u32, Error> {
            text.trim()
                .parse()
                .map_err(|_| invalid(spec, &format!("{what} `{text}` is not a number")))
        };
        // The task's index: as is with an explicit count (`auto/N`), else offset by the
        // array's first id, the array being the whole shard set.
        let env_index = |spec: &str, count: Option<u32>| -> Result<Option<u32>, Error> {
            if let Some(index) = env("JOB_COMPLETION_INDEX") {
                return number(spec, "JOB_COMPLETION_INDEX", &index).map(Some);
            }
            let Some(id) = env("SLURM_ARRAY_TASK_ID") else {
                return Ok(None);
            };
            let id = number(spec, "SLURM_ARRAY_TASK_ID", &id)?;
            if let Some(count) = count {
                if id >= count {
                    return Err(invalid(
                        spec,
                        &format!(
                            "SLURM_ARRAY_TASK_ID {id} is not below the shard count {count}: shards \
                             are 0-based, submit --array=0-{}, or pass \
                             --shard \"$((SLURM_ARRAY_TASK_ID - 1))/{count}\" for a 1-based array",
                            count.saturating_sub(1)
                        ),
                    ));
                }
                return Ok(Some(id));
            }
            if env("SLURM_ARRAY_TASK_COUNT").as_deref().map(str::trim) == Some("1") {
                return Err(invalid(
                    spec,
                    &format!(
                        "a one-task Slurm array (a rerun such as --array={id}) does not say how \
                         many shards there are: pass --shard \"$SLURM_ARRAY_TASK_ID/N\" (here \
                         --shard {id}/N) with N the shard count of the first submission"
                    ),
                ));
            }
            let min = match env("SLURM_ARRAY_TASK_MIN") {
                Some(min) => number(spec, "SLURM_ARRAY_TASK_MIN", &min)?,
                None => 0,
            };
            id.checked_sub(min)
                .map(Some)
                .ok_or_else(|| invalid(spec, "SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN"))
        };
        let slurm_count = |spec: &str| -> Result<Option<u32>, Error> {
            env("SLURM_ARRAY_TASK_COUNT")
                .map(|count| number(spec, "SLURM_ARRAY_TASK_COUNT", &count))
                .transpose()
        };

        let Some(spec) = spec.map(str::trim) else {
            if env("JOB_COMPLETION_INDEX").is_some() {
                return Err(invalid(
                    "(none)",
                    "JOB_COMPLETION_INDEX is set but Kubernetes does not give the shard count: \
                     pass --shard auto/N with N = the Job's completions",
                ));
            }
            return match (env_index("(none)", None)?, slurm_count("(none)")?) {
                (Some(index), Some(count)) => Self::new(index, count),
                _ => Ok(Self::ALL),
            };
        };
        let (index, count) = spec.split_once('/').unwrap_or((spec, ""));
        let (count, explicit) = match count.trim() {
            "" => (
                slurm_count(spec)?.ok_or_else(|| {
                    invalid(
                        spec,
                        "no count: write I/N or auto/N (or run in a Slurm array)",
                    )
                })?,
                false,
            ),
            count => (number(spec, "count", count)?, true),
        };
        let index = match index.trim() {
            "auto" => env_index(spec, explicit.then_some(count))?.ok_or_else(|| {
                invalid(
                    spec,
                    "`auto` needs JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the environment",
                )
            })?,
            index => number(spec, "index", index)?,
        };
        Self::new(index, count).map_err(|_| invalid(spec, "needs 0 <= index < count"))
    }

    /// The infix that keeps this shard's files apart from the others' in a shared directory:
    /// empty for the whole input, `-s0003of0008` for shard 3 of 8.
    pub(crate) fn tag(&self) -> String {
        if self.count == 1 {
            String::new()
        } else {
            format!("-s{:04}of{:04}", self.index, self.count)
        }
    }

    /// Parses a [`Shard::tag`] back (`""` is the whole input).
    pub(crate) fn from_tag(tag: &str) -> Option<Self> {
        if tag.is_empty() {
            return Some(Self::ALL);
        }
        let (index, count) = tag.strip_prefix("-s")?.split_once("of")?;
        Self::new(index.parse().ok()?, count.parse().ok()?).ok()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 1 {
            f.write_str("an unsharded run")
        } else {
            write!(f, "shard {}/{}", self.index, self.count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(spec: Option<&str>, vars: &[(&str, &str)]) -> Result<Shard, Error> {
        Shard::resolve(spec, |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn explicit_spec_wins_over_environment() {
        let shard = resolve(Some("2/5"), &[("SLURM_ARRAY_TASK_ID", "0")]).unwrap();
        assert_eq!((shard.index(), shard.count()), (2, 5));
        assert!(resolve(Some("5/5"), &[]).is_err());
        assert!(resolve(Some("x/5"), &[]).is_err());
        assert!(resolve(Some("3"), &[]).is_err());
    }

    #[test]
    fn kubernetes_index_needs_a_count() {
        let k8s = [("JOB_COMPLETION_INDEX", "3")];
        assert_eq!(
            resolve(Some("auto/4"), &k8s).unwrap(),
            Shard::new(3, 4).unwrap()
        );
        assert!(resolve(None, &k8s).is_err());
        assert!(resolve(Some("auto"), &k8s).is_err());
    }

    #[test]
    fn slurm_array_gives_index_and_count_offset_by_min() {
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ];
        let want = Shard::new(3, 8).unwrap();
        assert_eq!(resolve(Some("auto"), &slurm).unwrap(), want);
        assert_eq!(resolve(None, &slurm).unwrap(), want);
        assert_eq!(resolve(None, &[]).unwrap(), Shard::ALL);
    }

    #[test]
    fn auto_with_a_count_takes_the_slurm_task_id_as_is() {
        // `sbatch --array=3` to rerun shard 3 of 8: the array's min is 3, not 0.
        let rerun = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "1"),
        ];
        let three = Shard::new(3, 8).unwrap();
        assert_eq!(resolve(Some("auto/8"), &rerun).unwrap(), three);
        assert_eq!(resolve(Some("3/8"), &rerun).unwrap(), three);
        // Without a count a one-task array cannot tell the layout: refused with the way out.
        for spec in [Some("auto"), None] {
            let message = resolve(spec, &rerun).unwrap_err().to_string();
            assert!(message.contains("--shard 3/N"), "{message}");
        }
        // A 1-based array with auto/N: the last task is out of range, and the advice says why.
        let last = [("SLURM_ARRAY_TASK_ID", "8"), ("SLURM_ARRAY_TASK_MIN", "1")];
        let message = resolve(Some("auto/8"), &last).unwrap_err().to_string();
        assert!(message.contains("0-based"), "{message}");
    }

    #[test]
    fn tags_round_trip() {
        for shard in [Shard::ALL, Shard::new(3, 8).unwrap()] {
            assert_eq!(Shard::from_tag(&shard.tag()), Some(shard));
        }
        assert_eq!(Shard::new(3, 8).unwrap().tag(), "-s0003of0008");
    }
}
