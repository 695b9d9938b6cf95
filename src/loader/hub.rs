//! Models from the Hugging Face hub, through the standard cache layout
//! (`models--owner--name/{refs,snapshots}`) that Python tools share.

use std::path::PathBuf;

use hf_hub::api::sync::{ApiBuilder, ApiRepo};
use hf_hub::{Repo, RepoType};

use super::source::FileSource;
use crate::error::{Error, Result};

/// A repo on the hub, read from the cache and, unless offline, downloaded into it.
pub(crate) struct HubRepo {
    repo: String,
    revision: String,
    cache_dir: PathBuf,
    /// `None` when offline: only the cache is consulted.
    api: Option<ApiRepo>,
}

impl HubRepo {
    /// Opens `repo` at `revision`. `cache_dir` defaults to the environment's hub cache;
    /// `offline` (or `HF_HUB_OFFLINE=1`) forbids network access.
    pub(crate) fn open(
        repo: &str,
        revision: &str,
        cache_dir: Option<PathBuf>,
        offline: bool,
    ) -> Result<Self> {
        let cache_dir = cache_dir.unwrap_or_else(default_cache_dir);
        let offline = offline || env_flag("HF_HUB_OFFLINE");
        let api = if offline {
            None
        } else {
            let mut builder =
                ApiBuilder::from_cache(hf_hub::Cache::new(cache_dir.clone())).with_progress(false);
            if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
                builder = builder.with_endpoint(endpoint);
            }
            if let Ok(token) = std::env::var("HF_TOKEN") {
                builder = builder.with_token(Some(token));
            }
            let api = builder.build().map_err(|e| Error::Hub {
                repo: repo.to_string(),
                file: String::new(),
                reason: e.to_string(),
            })?;
            Some(api.repo(Repo::with_revision(
                repo.to_string(),
                RepoType::Model,
                revision.to_string(),
            )))
        };
        Ok(Self {
            repo: repo.to_string(),
            revision: revision.to_string(),
            cache_dir,
            api,
        })
    }

    /// The cached copy of `file`, if any. A 40-hex revision names a snapshot directly; a branch or
    /// tag is resolved through `refs/`, as the Python hub client does.
    fn cached(&self, file: &str) -> Option<PathBuf> {
        let path = self.snapshot()?.join(file);
        path.is_file().then_some(path)
    }

    /// The cached snapshot folder of the revision, if the cache has one.
    fn snapshot(&self) -> Option<PathBuf> {
        let repo_dir = self
            .cache_dir
            .join(format!("models--{}", self.repo.replace('/', "--")));
        let commit = if is_commit_hash(&self.revision) {
            self.revision.clone()
        } else {
            std::fs::read_to_string(repo_dir.join("refs").join(&self.revision))
                .ok()?
                .trim()
                .to_string()
        };
        let dir = repo_dir.join("snapshots").join(commit);
        dir.is_dir().then_some(dir)
    }
}

impl FileSource for HubRepo {
    fn describe(&self) -> String {
        self.repo.clone()
    }

    fn get(&self, file: &str) -> Result<Option<PathBuf>> {
        if let Some(path) = self.cached(file) {
            return Ok(Some(path));
        }
        let Some(api) = &self.api else {
            // Offline, a snapshot in the cache is the whole repo as far as we can know; without
            // one the model was never downloaded, which is not the same as a missing file.
            return match self.snapshot() {
                Some(_) => Ok(None),
                None => Err(Error::Hub {
                    repo: self.repo.clone(),
                    file: file.to_string(),
                    reason: format!(
                        "revision `{}` is not in the local cache {} and downloads are off \
                         (offline, or HF_HUB_OFFLINE=1): download it once online, or point \
                         HF_HUB_CACHE at a cache that has it",
                        self.revision,
                        self.cache_dir.display()
                    ),
                }),
            };
        };
        match api.get(file) {
            Ok(path) => Ok(Some(path)),
            // The repo has no such file: optional files are simply absent.
            Err(hf_hub::api::sync::ApiError::RequestError(e))
                if matches!(*e, ureq::Error::Status(404, _)) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::Hub {
                repo: self.repo.clone(),
                file: file.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`: the Python client's order.
fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(home) = std::env::var_os("HF_HOME") {
        return PathBuf::from(home).join("hub");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache").join("huggingface").join("hub")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_cache() -> (tempfile::TempDir, String) {
        let cache = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567".to_string();
        let repo = cache.path().join("models--owner--tiny");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), &commit).unwrap();
        let snap = repo.join("snapshots").join(&commit).join("1_Pooling");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("config.json"), "{}").unwrap();
        (cache, commit)
    }

    #[test]
    fn offline_reads_branch_and_commit_from_cache() {
        let (cache, commit) = fake_cache();
        let dir = Some(cache.path().to_path_buf());
        let by_branch = HubRepo::open("owner/tiny", "main", dir.clone(), true).unwrap();
        assert!(by_branch.get("1_Pooling/config.json").unwrap().is_some());
        assert!(by_branch.get("modules.json").unwrap().is_none());
        let err = by_branch.require("config.json").unwrap_err();
        assert!(matches!(err, Error::MissingFile { .. }), "{err}");

        let by_commit = HubRepo::open("owner/tiny", &commit, dir.clone(), true).unwrap();
        assert!(by_commit.get("1_Pooling/config.json").unwrap().is_some());
        // A revision that was never downloaded is named as such, not as a missing file.
        let other_branch = HubRepo::open("owner/tiny", "dev", dir, true).unwrap();
        let err = other_branch.get("1_Pooling/config.json").unwrap_err();
        assert!(
            matches!(&err, Error::Hub { reason, .. } if reason.contains("not in the local cache")),
            "{err}"
        );
    }
}
