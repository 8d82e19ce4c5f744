//! The agent's spool: results checked and not yet delivered, oldest first, bounded.
//!
//! Every result is numbered (`seq`) when it enters; together with the agent's id that number is
//! the server's idempotency key, so a batch delivered twice (the answer was lost) is stored once.
//! With a directory, the spool survives a restart:
//! - results are appended to segment files of [`SEGMENT`] lines (`spool-<first seq>.jsonl`),
//!   and a segment is deleted once every result in it is delivered or dropped;
//! - `state.json` keeps the agent's id, the dropped count, and the numbers handed out so far,
//!   reserved in blocks so that a restart never reuses one (a reused number would make the server
//!   take a new result for a retry and drop it).
//!
//! Beyond `max` results the oldest are dropped, and the count goes to the server with every batch.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use app::model::AgentResult;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Results per segment file.
pub const SEGMENT: usize = 1_000;
/// Sequence numbers reserved on disk at a time.
const RESERVE: i64 = 10_000;

#[derive(Debug, thiserror::Error)]
#[error("spool {path}: {source}")]
pub struct SpoolError {
    path: String,
    source: std::io::Error,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError { path: path.display().to_string(), source }
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    agent_id: Uuid,
    /// Numbers below this may have been handed out: a restart starts here.
    reserved: i64,
    dropped: i64,
    /// Every result numbered below this was delivered or dropped (a segment may still hold some).
    #[serde(default)]
    floor: i64,
}

/// One spooled result: its number and its JSON (an [`AgentResult`]), ready for the batch body.
#[derive(Clone, Debug)]
pub struct Entry {
    pub seq: i64,
    pub json: String,
}

struct Segment {
    last: i64,
    path: PathBuf,
}

struct Disk {
    dir: PathBuf,
    segments: VecDeque<Segment>,
    /// The segment being appended to, and how many lines it has.
    open: Option<(File, usize)>,
}

pub struct Spool {
    agent_id: Uuid,
    max: usize,
    queue: VecDeque<Entry>,
    next_seq: i64,
    reserved: i64,
    dropped: i64,
    disk: Option<Disk>,
}

impl Spool {
    /// A spool in memory only: a restart is a new agent with nothing kept.
    pub fn in_memory(max: usize) -> Self {
        Self {
            agent_id: Uuid::new_v4(),
            max: max.max(1),
            queue: VecDeque::new(),
            next_seq: 0,
            reserved: i64::MAX,
            dropped: 0,
            disk: None,
        }
    }

    /// Opens (or creates) the spool in `dir`, with what an earlier run left undelivered.
    pub fn open(dir: &Path, max: usize) -> Result<Self, SpoolError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let state_path = dir.join("state.json");
        let state = match fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes)
                .map_err(|e| SpoolError { path: state_path.display().to_string(), source: std::io::Error::other(e) })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                State { agent_id: Uuid::new_v4(), reserved: 0, dropped: 0, floor: 0 }
            }
            Err(e) => return Err(io(&state_path)(e)),
        };
        let mut paths: Vec<(i64, PathBuf)> = fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let first = name.strip_prefix("spool-")?.strip_suffix(".jsonl")?.parse().ok()?;
                Some((first, e.path()))
            })
            .collect();
        paths.sort();
        let mut queue = VecDeque::new();
        let mut segments = VecDeque::new();
        for (first, path) in paths {
            let file = File::open(&path).map_err(io(&path))?;
            let mut last = first - 1;
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                // A line cut short by a crash is not a result: skip it.
                let Ok(parsed) = serde_json::from_str::<AgentResult>(&line) else { continue };
                last = parsed.seq;
                if parsed.seq >= state.floor {
                    queue.push_back(Entry { seq: parsed.seq, json: line });
                }
            }
            segments.push_back(Segment { last, path });
        }
        // Numbers on disk beyond the reserve (one whose save failed) are never handed out again.
        let after_disk = segments.back().map_or(0, |s: &Segment| s.last + 1);
        let start = state.reserved.max(after_disk);
        let mut spool = Self {
            agent_id: state.agent_id,
            max: max.max(1),
            queue,
            next_seq: start,
            reserved: start,
            dropped: state.dropped,
            disk: Some(Disk { dir: dir.to_owned(), segments, open: None }),
        };
        spool.shed();
        spool.trim_segments()?;
        spool.save_state()?;
        Ok(spool)
    }

    pub fn agent_id(&self) -> Uuid {
        self.agent_id
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn dropped(&self) -> i64 {
        self.dropped
    }

    /// Numbers and keeps results (in the order given), appending them to disk.
    pub fn push(&mut self, results: Vec<app::model::ProbeResult>) -> Result<(), SpoolError> {
        if results.is_empty() {
            return Ok(());
        }
        let mut failed = None;
        let needed = self.next_seq + i64::try_from(results.len()).unwrap_or(i64::MAX);
        if self.disk.is_some() && needed > self.reserved {
            // Reserved on disk before any of the numbers is handed out.
            let previous = self.reserved;
            self.reserved = needed + RESERVE;
            if let Err(e) = self.save_state() {
                self.reserved = previous;
                failed = Some(e);
            }
        }
        for result in results {
            let seq = self.next_seq;
            self.next_seq += 1;
            let json = serde_json::to_string(&AgentResult { seq, result }).unwrap_or_default();
            if let Err(e) = self.append(seq, &json) {
                failed.get_or_insert(e);
            }
            // Kept in memory even when the disk refuses it.
            self.queue.push_back(Entry { seq, json });
        }
        let before = self.dropped;
        self.shed();
        if self.dropped != before {
            self.trim_segments()?;
            self.save_state()?;
        }
        failed.map_or(Ok(()), Err)
    }

    /// Drops the oldest `n` results the server refused for good, counting them as dropped.
    pub fn refuse(&mut self, n: usize) -> Result<(), SpoolError> {
        for _ in 0..n {
            if self.queue.pop_front().is_some() {
                self.dropped += 1;
            }
        }
        self.trim_segments()?;
        self.save_state()
    }

    /// The oldest `n` results, to deliver (they stay until [`ack`](Self::ack)).
    pub fn peek(&self, n: usize) -> Vec<Entry> {
        self.queue.iter().take(n).cloned().collect()
    }

    /// The server has every result up to `seq`: forget them.
    pub fn ack(&mut self, seq: i64) -> Result<(), SpoolError> {
        while self.queue.front().is_some_and(|e| e.seq <= seq) {
            self.queue.pop_front();
        }
        self.trim_segments()?;
        self.save_state()
    }

    /// Makes what was appended durable (called every second by the deliverer, not per result).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if let Some(Disk { dir, open: Some((file, _)), .. }) = &mut self.disk {
            file.sync_data().map_err(io(dir))?;
        }
        Ok(())
    }

    fn shed(&mut self) {
        while self.queue.len() > self.max {
            self.queue.pop_front();
            self.dropped += 1;
        }
    }

    fn append(&mut self, seq: i64, json: &str) -> Result<(), SpoolError> {
        let Some(disk) = &mut self.disk else { return Ok(()) };
        if disk.open.as_ref().is_none_or(|(_, lines)| *lines >= SEGMENT) {
            if let Some((file, _)) = disk.open.take() {
                file.sync_data().map_err(io(&disk.dir))?;
            }
            let path = disk.dir.join(format!("spool-{seq:020}.jsonl"));
            let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
            disk.segments.push_back(Segment { last: seq, path });
            disk.open = Some((file, 0));
        }
        let mut broken = None;
        if let (Some((file, lines)), Some(segment)) = (&mut disk.open, disk.segments.back_mut()) {
            let mut line = Vec::with_capacity(json.len() + 1);
            line.extend_from_slice(json.as_bytes());
            line.push(b'\n');
            match file.write_all(&line) {
                Ok(()) => {
                    *lines += 1;
                    segment.last = seq;
                }
                Err(e) => broken = Some(io(&segment.path)(e)),
            }
        }
        match broken {
            // What was written of the line would glue it to the next: start a new segment.
            Some(e) => {
                disk.open = None;
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Deletes the segments whose every result is gone from the queue.
    fn trim_segments(&mut self) -> Result<(), SpoolError> {
        let front = self.queue.front().map_or(i64::MAX, |e| e.seq);
        let Some(disk) = &mut self.disk else { return Ok(()) };
        while let Some(segment) = disk.segments.front() {
            if segment.last >= front {
                break;
            }
            let is_open = disk.segments.len() == 1 && disk.open.is_some();
            if is_open {
                // The segment being written to: start a new one with the next result.
                disk.open = None;
            }
            if let Some(segment) = disk.segments.pop_front() {
                match fs::remove_file(&segment.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&segment.path)(e)),
                }
            }
        }
        Ok(())
    }

    fn save_state(&self) -> Result<(), SpoolError> {
        let Some(disk) = &self.disk else { return Ok(()) };
        let floor = self.queue.front().map_or(self.next_seq, |e| e.seq);
        let state = State { agent_id: self.agent_id, reserved: self.reserved, dropped: self.dropped, floor };
        let tmp = disk.dir.join("state.json.tmp");
        let path = disk.dir.join("state.json");
        let bytes = serde_json::to_vec(&state).unwrap_or_default();
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::{Outcome, ProbeResult};
    use chrono::Utc;

    fn results(n: usize) -> Vec<ProbeResult> {
        (0..n).map(|i| ProbeResult::bare(Uuid::nil(), Utc::now(), Outcome::Up, format!("r{i}"))).collect()
    }

    /// Removed when dropped, whether the test passes or fails.
    fn dir() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("triage-spool-test-").tempdir().expect("temporary directory")
    }

    #[test]
    fn what_was_not_delivered_survives_a_restart_and_numbers_are_never_reused() {
        let tmp = dir();
        let d = tmp.path().to_path_buf();
        let mut s = Spool::open(&d, 10_000).expect("open");
        let id = s.agent_id();
        s.push(results(2_500)).expect("push");
        s.ack(999).expect("ack");
        let seqs: Vec<i64> = s.peek(3).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1000, 1001, 1002]);
        assert_eq!(
            fs::read_dir(&d)
                .expect("dir")
                .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("spool-")))
                .count(),
            2,
            "the first segment, all delivered, is gone"
        );
        drop(s);
        let mut again = Spool::open(&d, 10_000).expect("reopen");
        assert_eq!(again.agent_id(), id, "the same agent");
        assert_eq!(again.len(), 1_500);
        assert_eq!(again.peek(1)[0].seq, 1000);
        again.push(results(1)).expect("push");
        let last = again.peek(2_000).last().map(|e| e.seq);
        assert!(last >= Some(2_500), "a number handed out before the restart is not handed out again: {last:?}");
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_counts_them_across_a_restart() {
        let tmp = dir();
        let d = tmp.path().to_path_buf();
        let mut s = Spool::open(&d, 100).expect("open");
        s.push(results(150)).expect("push");
        assert_eq!(s.len(), 100);
        assert_eq!(s.dropped(), 50);
        assert_eq!(s.peek(1)[0].seq, 50, "the oldest went first");
        drop(s);
        let again = Spool::open(&d, 100).expect("reopen");
        assert_eq!(again.dropped(), 50);
        assert_eq!(again.len(), 100);
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_skipped() {
        let tmp = dir();
        let d = tmp.path().to_path_buf();
        let mut s = Spool::open(&d, 100).expect("open");
        s.push(results(3)).expect("push");
        drop(s);
        let seg = d.join(format!("spool-{:020}.jsonl", 0));
        let mut f = OpenOptions::new().append(true).open(&seg).expect("segment");
        f.write_all(b"{\"seq\":3,\"resu").expect("write");
        let again = Spool::open(&d, 100).expect("reopen");
        assert_eq!(again.len(), 3);
    }

    #[test]
    fn numbers_on_disk_beyond_a_lost_reserve_are_not_handed_out_again() {
        let tmp = dir();
        let d = tmp.path().to_path_buf();
        let mut s = Spool::open(&d, 100).expect("open");
        let id = s.agent_id();
        s.push(results(3)).expect("push");
        drop(s);
        // As if the reserve had never been saved: the segment still holds numbers 0–2.
        let state = serde_json::json!({"agent_id": id, "reserved": 0, "dropped": 0, "floor": 0});
        fs::write(d.join("state.json"), state.to_string()).expect("state");
        let mut again = Spool::open(&d, 100).expect("reopen");
        again.push(results(1)).expect("push");
        assert_eq!(again.peek(10).last().map(|e| e.seq), Some(3));
    }

    #[test]
    fn results_the_server_refuses_are_counted_as_dropped() {
        let mut s = Spool::in_memory(100);
        s.push(results(5)).expect("push");
        s.refuse(2).expect("refuse");
        assert_eq!((s.len(), s.dropped(), s.peek(1)[0].seq), (3, 2, 2));
    }

    #[test]
    fn in_memory_spools_are_bounded_too() {
        let mut s = Spool::in_memory(10);
        s.push(results(25)).expect("push");
        assert_eq!((s.len(), s.dropped()), (10, 15));
        s.ack(20).expect("ack");
        assert_eq!(s.len(), 4);
    }
}
