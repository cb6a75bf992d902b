//! `statvfs(2)` off the async path, with a deadline (spec §6.5).
//!
//! `statvfs` on a dead network mount blocks forever. Calls run on Tokio's blocking pool; the
//! caller waits at most the configured timeout. A mount whose call has not returned is
//! remembered as stuck and not asked again until that call returns, so a dead mount costs one
//! blocked thread, not one per round.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `stat` and `statvfs` say about one mount point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FsStat {
    /// `st_dev` of the mount point (identifies the file system for de-duplication).
    pub(crate) dev: u64,
    /// Fragment size: the unit of the block counts.
    pub(crate) frsize: u64,
    pub(crate) blocks: u64,
    pub(crate) bfree: u64,
    pub(crate) bavail: u64,
    pub(crate) files: u64,
    pub(crate) ffree: u64,
}

/// Runs `statvfs` calls with a deadline and remembers mounts that hang.
#[derive(Clone, Debug)]
pub(crate) struct FsProbe {
    timeout: Duration,
    stuck: Arc<Mutex<HashSet<PathBuf>>>,
}

impl FsProbe {
    pub(crate) fn new(timeout: Duration) -> Self {
        FsProbe {
            timeout,
            stuck: Arc::default(),
        }
    }

    /// Stats `paths` in order; returns those that answered within the deadline, in order.
    pub(crate) async fn stat(&self, paths: Vec<PathBuf>) -> Vec<(PathBuf, FsStat)> {
        let todo: Vec<PathBuf> = {
            let Ok(stuck) = self.stuck.lock() else {
                return Vec::new();
            };
            paths.into_iter().filter(|p| !stuck.contains(p)).collect()
        };
        if todo.is_empty() {
            return Vec::new();
        }
        let results = Arc::new(Mutex::new(Vec::with_capacity(todo.len())));
        let give_up = Arc::new(AtomicBool::new(false));
        let task = {
            let (results, give_up, stuck) = (results.clone(), give_up.clone(), self.stuck.clone());
            tokio::task::spawn_blocking(move || {
                for p in todo {
                    if give_up.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(mut s) = stuck.lock() {
                        s.insert(p.clone());
                    }
                    let r = stat_one(&p);
                    if let Ok(mut s) = stuck.lock() {
                        s.remove(&p);
                    }
                    match r {
                        Ok(st) => {
                            if let Ok(mut res) = results.lock() {
                                res.push((p, st));
                            }
                        }
                        Err(e) => {
                            tracing::debug!(mount = %p.display(), error = %e, "statvfs failed");
                        }
                    }
                }
            })
        };
        if tokio::time::timeout(self.timeout, task).await.is_err() {
            give_up.store(true, Ordering::Relaxed);
            if let Ok(stuck) = self.stuck.lock() {
                for p in stuck.iter() {
                    crate::events::STATVFS_TIMEOUT.log(|suppressed| {
                        tracing::warn!(
                            mount = %p.display(),
                            timeout = ?self.timeout,
                            suppressed,
                            "statvfs did not answer; mount skipped until it does"
                        );
                    });
                }
            }
        }
        match results.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => Vec::new(),
        }
    }
}

fn stat_one(path: &Path) -> Result<FsStat, std::io::Error> {
    let dev = std::fs::metadata(path)?.dev();
    let v = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    #[allow(clippy::useless_conversion)] // the libc types differ between targets
    Ok(FsStat {
        dev,
        frsize: u64::from(v.fragment_size()),
        blocks: u64::from(v.blocks()),
        bfree: u64::from(v.blocks_free()),
        bavail: u64::from(v.blocks_available()),
        files: u64::from(v.files()),
        ffree: u64::from(v.files_free()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stats_real_paths_and_skips_missing_ones() {
        let probe = FsProbe::new(Duration::from_secs(5));
        let dir = tempfile::tempdir().unwrap();
        let r = probe
            .stat(vec![
                dir.path().to_owned(),
                PathBuf::from("/nonexistent/charcoal"),
            ])
            .await;
        assert_eq!(r.len(), 1);
        assert!(r[0].1.blocks > 0);
        assert!(r[0].1.frsize > 0);
    }
}
