//! In-memory stores, for tests, `plugin run` and throwaway hosts
//! (`--db memory`). Everything is lost when the process ends.

use super::records::{log_page, page_of_summaries};
use super::{
    JobRecord, JobStore, KvError, KvStore, LOG_PAGE_BYTES, LogPage, RunCounts, RunFilter, RunList,
    RunOrigin, RunRecord, RunStatus, RunSummary, RunsFrom, Snapshot, StoreError, Write, Written,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Total bytes (keys plus values) one job may keep.
pub const DEFAULT_JOB_QUOTA: u64 = 16 << 20;

/// Kv data held in a map; lost when the process ends.
#[derive(Debug)]
pub struct MemoryKv {
    data: Mutex<HashMap<String, JobKv>>,
    quota: u64,
}

/// One job's kv data and its running size, so a `set` need not sum every
/// entry to check the quota.
#[derive(Debug, Default)]
struct JobKv {
    /// Keys plus values, in bytes.
    used: u64,
    entries: HashMap<String, Vec<u8>>,
}

/// A kv entry's size against the quota: its key's UTF-8 bytes plus its
/// value's bytes (the SQLite store counts the same way).
fn entry_size(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

impl Default for MemoryKv {
    fn default() -> Self {
        Self::with_quota(DEFAULT_JOB_QUOTA)
    }
}

impl MemoryKv {
    /// An empty store whose jobs may each keep `quota` bytes.
    pub fn with_quota(quota: u64) -> Self {
        Self {
            data: Mutex::new(HashMap::new()),
            quota,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, JobKv>> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes `job` holds (keys plus values).
    pub fn used(&self, job: &str) -> u64 {
        self.lock().get(job).map_or(0, |j| j.used)
    }
}

impl KvStore for MemoryKv {
    fn get(&self, job: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self
            .lock()
            .get(job)
            .and_then(|j| j.entries.get(key))
            .cloned())
    }

    fn set(&self, job: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        let mut data = self.lock();
        let job_kv = data.entry(job.to_owned()).or_default();
        let old = job_kv.entries.get(key).map_or(0, |v| entry_size(key, v));
        let new = entry_size(key, value);
        if job_kv.used - old + new > self.quota {
            return Err(KvError::QuotaExceeded { quota: self.quota });
        }
        job_kv.used = job_kv.used - old + new;
        job_kv.entries.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, job: &str, key: &str) -> Result<(), KvError> {
        if let Some(job_kv) = self.lock().get_mut(job)
            && let Some(v) = job_kv.entries.remove(key)
        {
            job_kv.used -= entry_size(key, &v);
        }
        Ok(())
    }
}

/// Jobs and runs held in maps.
#[derive(Debug, Default)]
pub struct MemoryJobStore {
    inner: Mutex<Inner>,
    kv: Arc<MemoryKv>,
    audit: super::audit::MemoryAudit,
}

/// A run's fire key: at most one `fire` row per (job, scheduled time,
/// attempt).
type FireKey = (String, DateTime<Utc>, u32);

fn fire_key(run: &RunRecord) -> Option<FireKey> {
    (run.origin == RunOrigin::Fire).then(|| (run.job_id.clone(), run.scheduled_at, run.attempt))
}

/// Whether `a` and `b` are the same fire (origin, job, time, attempt):
/// a run written again whose fire did not move keeps its fire key.
fn same_fire(a: &RunRecord, b: &RunRecord) -> bool {
    a.origin == b.origin
        && a.attempt == b.attempt
        && a.scheduled_at == b.scheduled_at
        && a.job_id == b.job_id
}

/// Takes `run`'s fire key for it, if it has one (a fire's run): false
/// when another run holds it. One lookup.
fn claim_fire(fires: &mut HashMap<FireKey, String>, run: &RunRecord) -> bool {
    let Some(key) = fire_key(run) else {
        return true;
    };
    match fires.entry(key) {
        std::collections::hash_map::Entry::Occupied(owner) => *owner.get() == run.run_id,
        std::collections::hash_map::Entry::Vacant(place) => {
            place.insert(run.run_id.clone());
            true
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    jobs: HashMap<String, JobRecord>,
    /// Boxed: a record is a few hundred bytes, and a map that grows by a
    /// burst's runs moved every one of them at each resize (2 % of a
    /// 10,000-job burst's CPU in `perf`, docs/BENCHMARKS.md).
    runs: HashMap<String, Box<RunRecord>>,
    /// The fire keys taken, and by which run.
    fires: HashMap<FireKey, String>,
    /// Each job's runs in history order, oldest first: what a job's
    /// history, its prune and its deletion read, so that none of them
    /// scans every job's runs (a prune follows each finished run: with
    /// 10,000 jobs a scan per prune stalled a burst for tens of seconds).
    by_job: HashMap<String, BTreeSet<(DateTime<Utc>, String)>>,
    /// Named calendars: name → spec JSON.
    calendars: std::collections::BTreeMap<String, String>,
}

impl Inner {
    /// Whether `run` belongs to its job's live incarnation.
    fn live(&self, run: &RunRecord) -> bool {
        self.jobs
            .get(&run.job_id)
            .is_some_and(|j| j.incarnation == run.incarnation)
    }

    /// Inserts or replaces a run (of a live incarnation); gives it back
    /// (boxed: only refusals pay for it) when a fire row of another run
    /// holds its fire key.
    ///
    /// Written for the fire path, where a run is put two or three times
    /// (its fire, maybe its start, its end) and every map lookup in a big
    /// store is a cache miss or two: an in-place replace looks at the
    /// fire keys only if the run's fire moved (it never does there), and
    /// a new run of a fire write ([`Self::put_new_run`]) takes its place
    /// in `runs` and `fires` with one lookup each (a burst's writes were
    /// a quarter of a 10,000-job burst's CPU on this store;
    /// docs/BENCHMARKS.md, "Aligned bursts", ninth round).
    fn put_run(&mut self, run: RunRecord) -> Result<(), Box<RunRecord>> {
        if let Some(stored) = self.runs.get_mut(&run.run_id) {
            if !same_fire(stored, &run) && !claim_fire(&mut self.fires, &run) {
                return Err(Box::new(run));
            }
            let old = std::mem::replace(&mut **stored, run);
            let run = &**stored;
            if (old.scheduled_at, &old.job_id) != (run.scheduled_at, &run.job_id) {
                if let Some(runs) = self.by_job.get_mut(&old.job_id) {
                    runs.remove(&(old.scheduled_at, old.run_id));
                }
                self.by_job
                    .entry(run.job_id.clone())
                    .or_default()
                    .insert((run.scheduled_at, run.run_id.clone()));
            }
            return Ok(());
        }
        self.put_new_run(run)
    }

    /// Inserts a run not stored yet (one lookup in `runs`); gives it back
    /// when it is stored already or another run holds its fire key.
    fn put_new_run(&mut self, run: RunRecord) -> Result<(), Box<RunRecord>> {
        let std::collections::hash_map::Entry::Vacant(slot) = self.runs.entry(run.run_id.clone())
        else {
            return Err(Box::new(run));
        };
        if !claim_fire(&mut self.fires, &run) {
            return Err(Box::new(run));
        }
        let place = (run.scheduled_at, run.run_id.clone());
        match self.by_job.get_mut(&run.job_id) {
            Some(runs) => {
                runs.insert(place);
            }
            None => {
                self.by_job
                    .insert(run.job_id.clone(), BTreeSet::from([place]));
            }
        }
        slot.insert(Box::new(run));
        Ok(())
    }

    fn remove_run(&mut self, run_id: &str) {
        let Some(run) = self.runs.remove(run_id) else {
            return;
        };
        if let Some(key) = fire_key(&run) {
            self.fires.remove(&key);
        }
        if let Some(runs) = self.by_job.get_mut(&run.job_id) {
            runs.remove(&(run.scheduled_at, run.run_id));
        }
    }

    /// `job_id`'s runs, newest first (by scheduled time, then run id).
    fn history<'a>(&'a self, job_id: &str) -> impl Iterator<Item = &'a RunRecord> + 'a {
        self.by_job
            .get(job_id)
            .into_iter()
            .flat_map(|runs| runs.iter().rev())
            .filter_map(|(_, id)| self.runs.get(id).map(|r| &**r))
    }
}

impl MemoryJobStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl JobStore for MemoryJobStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        let inner = self.lock();
        let mut jobs: Vec<JobRecord> = inner.jobs.values().cloned().collect();
        jobs.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
        let unfinished = inner
            .runs
            .values()
            .filter(|r| matches!(r.status, RunStatus::Pending | RunStatus::Running))
            .map(|r| (**r).clone())
            .collect();
        Ok(Snapshot {
            jobs,
            broken: Vec::new(),
            unfinished,
        })
    }

    async fn insert_job(&self, mut job: JobRecord, replace: bool) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if !replace && inner.jobs.contains_key(&job.spec.id) {
            return Err(StoreError::Duplicate(job.spec.id.clone()));
        }
        // As the databases: a new row has no pause note; a replaced one
        // takes the given reason, and keeps its `failures_from` unless a
        // new one is given.
        match inner.jobs.get(&job.spec.id) {
            Some(old) => job.failures_from = job.failures_from.or(old.failures_from),
            None => {
                job.paused_reason = None;
                job.failures_from = None;
            }
        }
        inner.jobs.insert(job.spec.id.clone(), job);
        Ok(())
    }

    async fn calendars(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .lock()
            .calendars
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect())
    }

    async fn put_calendar(&self, name: &str, spec: Option<&str>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match spec {
            Some(spec) => inner.calendars.insert(name.to_owned(), spec.to_owned()),
            None => inner.calendars.remove(name),
        };
        Ok(())
    }

    async fn record_audit(&self, records: Vec<super::AuditRecord>) -> Result<(), StoreError> {
        self.audit.record(records);
        Ok(())
    }

    async fn audit(&self, query: &super::AuditQuery) -> Result<Vec<super::AuditEntry>, StoreError> {
        Ok(self.audit.query(query))
    }

    async fn prune_audit(&self, cutoff: DateTime<Utc>) -> Result<(), StoreError> {
        self.audit.prune(cutoff);
        Ok(())
    }

    async fn update_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match inner.jobs.get_mut(&job.spec.id) {
            Some(j) => {
                // As the databases: the pause note stays (its reason only
                // while the job stays paused).
                let reason = j.paused_reason.take().filter(|_| job.paused);
                let from = j.failures_from;
                *j = job.clone();
                j.paused_reason = reason;
                j.failures_from = from;
                Ok(())
            }
            None => Err(StoreError::NotFound(job.spec.id.clone())),
        }
    }

    async fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.jobs.remove(id).is_none() {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        let runs = inner.by_job.remove(id).unwrap_or_default();
        for (_, run_id) in runs {
            inner.remove_run(&run_id);
        }
        self.kv.lock().remove(id);
        Ok(())
    }

    async fn write(&self, batch: Vec<Write>) -> Result<Written, StoreError> {
        let mut inner = self.lock();
        let mut written = Written::default();
        for w in batch {
            match w {
                Write::Run(run) => {
                    if !inner.live(&run) {
                        dropped_run(&run);
                    } else if let Err(run) = inner.put_run(run) {
                        // As the databases' unique index refuses it.
                        return Err(StoreError::Backend(format!(
                            "run {} of job '{}': its fire ({}, attempt {}) is already recorded",
                            run.run_id, run.job_id, run.scheduled_at, run.attempt
                        )));
                    }
                }
                Write::End { run, retry } => {
                    if !inner.live(&run) {
                        dropped_run(&run);
                        continue;
                    }
                    // The second lookup of the row (in put_run) finds it
                    // in the cache this one brought it to.
                    let open = inner.runs.get(&run.run_id).is_none_or(|stored| {
                        stored.status == RunStatus::Running && stored.host == run.host
                    });
                    if !open {
                        written.refused.insert(run.run_id);
                        continue;
                    }
                    if inner.put_run(run).is_err() {
                        return Err(StoreError::Backend(
                            "a run's end: its fire is already recorded by another run".into(),
                        ));
                    }
                    if let Some(retry) = retry
                        && !inner.runs.contains_key(&retry.run_id)
                    {
                        // put_run leaves out a retry whose fire key is taken.
                        let _ = inner.put_run(*retry);
                    }
                }
                Write::Fire {
                    job_id,
                    incarnation,
                    from,
                    next,
                    runs,
                } => {
                    let current = inner
                        .jobs
                        .get_mut(&job_id)
                        .filter(|j| j.incarnation == incarnation && j.next_run_time == Some(from));
                    let Some(job) = current else {
                        written.stale.push(job_id);
                        written.refused.extend(runs.into_iter().map(|r| r.run_id));
                        continue;
                    };
                    job.next_run_time = next;
                    for run in runs {
                        // A fire's runs are new: one already stored, or one
                        // whose fire key another run holds, is refused.
                        if let Err(run) = inner.put_new_run(run) {
                            written.refused.insert(run.run_id);
                        }
                    }
                }
                Write::NextRun { job_id, next } => {
                    if let Some(j) = inner.jobs.get_mut(&job_id) {
                        j.next_run_time = next;
                    }
                }
                Write::Paused { job_id, paused } => {
                    if let Some(j) = inner.jobs.get_mut(&job_id) {
                        j.paused = paused;
                    }
                }
                Write::AutoPause {
                    job_id,
                    incarnation,
                    reason,
                    run_id,
                } => match inner.jobs.get_mut(&job_id) {
                    Some(j) if j.incarnation == incarnation && !j.paused => {
                        j.paused = true;
                        j.next_run_time = None;
                        j.paused_reason = Some(reason);
                    }
                    _ => {
                        written.refused.insert(run_id);
                    }
                },
                Write::PauseNote {
                    job_id,
                    reason,
                    failures_from,
                } => {
                    if let Some(j) = inner.jobs.get_mut(&job_id) {
                        j.paused_reason = reason;
                        j.failures_from = failures_from.or(j.failures_from);
                    }
                }
                Write::Prune {
                    job_id,
                    keep,
                    older_than,
                } => {
                    // Newest recorded first (run ids are UUID v7), as the
                    // databases prune.
                    let mut runs: Vec<&RunRecord> = inner.history(&job_id).collect();
                    runs.sort_unstable_by(|a, b| b.run_id.cmp(&a.run_id));
                    let doomed: Vec<String> = runs
                        .into_iter()
                        .filter(|r| !matches!(r.status, RunStatus::Pending | RunStatus::Running))
                        .enumerate()
                        .filter(|(i, r)| {
                            *i >= keep as usize
                                || older_than
                                    .is_some_and(|cut| r.ended_at.unwrap_or(r.scheduled_at) < cut)
                        })
                        .map(|(_, r)| r.run_id.clone())
                        .collect();
                    for id in doomed {
                        inner.remove_run(&id);
                    }
                }
            }
        }
        Ok(written)
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.lock().jobs.get(id).cloned())
    }

    async fn runs(
        &self,
        job_id: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let inner = self.lock();
        let Some(incarnation) = inner.jobs.get(job_id).map(|j| j.incarnation.as_str()) else {
            return Ok(Vec::new());
        };
        Ok(inner
            .history(job_id)
            .filter(|r| r.incarnation == incarnation)
            .skip(offset)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.lock().runs.get(run_id).map(|r| (**r).clone()))
    }

    async fn run_summaries(
        &self,
        job_id: &str,
        limit: usize,
        from: RunsFrom,
    ) -> Result<RunList, StoreError> {
        let inner = self.lock();
        let page = match from {
            RunsFrom::Offset(offset) => page_of_summaries(
                inner.history(job_id).skip(offset).map(RunSummary::from),
                limit,
            ),
            RunsFrom::Before(cursor) => {
                // The cursor's place in the job's (scheduled_at, run_id)
                // order; a run of another job, or none, matches nothing.
                let key = inner
                    .runs
                    .get(&cursor)
                    .filter(|r| r.job_id == job_id)
                    .map(|r| (r.scheduled_at, r.run_id.clone()));
                let older = key
                    .and_then(|key| inner.by_job.get(job_id).map(|runs| runs.range(..key).rev()));
                page_of_summaries(
                    older
                        .into_iter()
                        .flatten()
                        .filter_map(|(_, id)| inner.runs.get(id).map(|r| &**r))
                        .map(RunSummary::from),
                    limit,
                )
            }
        };
        Ok(page)
    }

    async fn all_runs(
        &self,
        filter: RunFilter,
        limit: usize,
        from: RunsFrom,
    ) -> Result<RunList, StoreError> {
        let inner = self.lock();
        let mut runs: Vec<&RunRecord> = inner
            .runs
            .values()
            .map(|r| &**r)
            .filter(|r| filter.matches(r.status, r.outcome.as_ref().map(|o| o.kind())))
            .filter(|r| {
                from.before()
                    .is_none_or(|cursor| r.run_id.as_str() < cursor)
            })
            .collect();
        runs.sort_unstable_by(|a, b| b.run_id.cmp(&a.run_id));
        Ok(page_of_summaries(
            runs.into_iter().skip(from.offset()).map(RunSummary::from),
            limit,
        ))
    }

    async fn run_counts(&self, from: DateTime<Utc>) -> Result<RunCounts, StoreError> {
        let inner = self.lock();
        let mut counts = RunCounts::default();
        let mut late: Vec<(&str, i64)> = Vec::new();
        for r in inner.runs.values().filter(|r| r.scheduled_at >= from) {
            let kind = r.outcome.as_ref().map(|o| o.kind().as_str());
            counts.add(r.status.as_str(), kind, 1);
            if let Some(started) = r.started_at
                && r.origin == RunOrigin::Fire
                && r.attempt == 1
            {
                late.push((&r.run_id, (started - r.scheduled_at).num_milliseconds()));
            }
        }
        late.sort_unstable_by(|a, b| b.0.cmp(a.0));
        counts.lateness_ms = late
            .into_iter()
            .take(super::records::LATENESS_SAMPLES)
            .map(|(_, ms)| ms)
            .collect();
        Ok(counts)
    }

    async fn run_summary(&self, run_id: &str) -> Result<Option<RunSummary>, StoreError> {
        Ok(self.lock().runs.get(run_id).map(|r| RunSummary::from(&**r)))
    }

    async fn run_logs(
        &self,
        run_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<LogPage>, StoreError> {
        let inner = self.lock();
        let Some(run) = inner.runs.get(run_id) else {
            return Ok(None);
        };
        let mut logs = Vec::new();
        let mut bytes = 0;
        for record in run.logs.iter().skip(offset).take(limit) {
            let size = serde_json::to_string(record).map_or(0, |s| s.len());
            if !logs.is_empty() && bytes + size > LOG_PAGE_BYTES {
                break;
            }
            bytes += size;
            logs.push(record.clone());
        }
        Ok(Some(log_page(logs, offset, run.logs.len() as u64)))
    }

    fn kv(&self) -> Arc<dyn KvStore> {
        self.kv.clone()
    }
}

/// Says that a run of a job incarnation that is no longer live (its job
/// was deleted, maybe re-created) was not recorded.
pub(crate) fn dropped_run(run: &RunRecord) {
    tracing::info!(
        job = %run.job_id,
        run = %run.run_id,
        status = run.status.as_str(),
        "the run's job was deleted while it was in flight; its result is not recorded"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_have_separate_namespaces() -> Result<(), KvError> {
        let kv = MemoryKv::default();
        kv.set("a", "k", b"1")?;
        kv.set("b", "k", b"2")?;
        assert_eq!(kv.get("a", "k")?, Some(b"1".to_vec()));
        assert_eq!(kv.get("b", "k")?, Some(b"2".to_vec()));
        kv.delete("a", "k")?;
        assert_eq!(kv.get("a", "k")?, None);
        assert_eq!(kv.get("b", "k")?, Some(b"2".to_vec()));
        Ok(())
    }

    #[test]
    fn quota_counts_bytes_of_nul_led_and_four_byte_keys() -> Result<(), KvError> {
        // "\0" is 1 byte, "😀" 4: characters would under-count both.
        let kv = MemoryKv::with_quota(20);
        kv.set("j", "\0\0\0\0\0", b"12345")?;
        assert_eq!(kv.used("j"), 10);
        kv.set("j", "😀😀", b"12")?;
        assert_eq!(kv.used("j"), 20);
        assert!(matches!(
            kv.set("j", "\0", b""),
            Err(KvError::QuotaExceeded { quota: 20 })
        ));
        kv.delete("j", "😀😀")?;
        assert_eq!(kv.used("j"), 10);
        Ok(())
    }

    #[test]
    fn quota_counts_keys_and_values_and_allows_overwrite() -> Result<(), KvError> {
        let kv = MemoryKv::with_quota(10);
        kv.set("j", "k", b"123456789")?;
        kv.set("j", "k", b"987654321")?;
        assert!(matches!(
            kv.set("j", "k2", b"1"),
            Err(KvError::QuotaExceeded { quota: 10 })
        ));
        Ok(())
    }
}
