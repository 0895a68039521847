//! An in-memory kv store, for tests, `plugin run` and throwaway hosts.

use super::{KvError, KvStore};
use std::collections::HashMap;
use std::sync::Mutex;

/// Total bytes (keys plus values) one job may keep.
pub const DEFAULT_JOB_QUOTA: u64 = 16 << 20;

/// Kv data held in a map; lost when the process ends.
#[derive(Debug)]
pub struct MemoryKv {
    data: Mutex<HashMap<String, HashMap<String, Vec<u8>>>>,
    quota: u64,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Vec<u8>>>> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl KvStore for MemoryKv {
    fn get(&self, job: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.lock().get(job).and_then(|m| m.get(key)).cloned())
    }

    fn set(&self, job: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        let mut data = self.lock();
        let entries = data.entry(job.to_owned()).or_default();
        let used: u64 = entries
            .iter()
            .filter(|(k, _)| k.as_str() != key)
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        if used + (key.len() + value.len()) as u64 > self.quota {
            return Err(KvError::QuotaExceeded { quota: self.quota });
        }
        entries.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, job: &str, key: &str) -> Result<(), KvError> {
        if let Some(entries) = self.lock().get_mut(job) {
            entries.remove(key);
        }
        Ok(())
    }
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
