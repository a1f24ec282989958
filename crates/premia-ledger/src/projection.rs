//! The period projection, `DIR/periods.bin`: per period, what its statement and its figures
//! read, so that such a read decodes one period instead of the whole fold state
//! (`period_read`).
//!
//! It is written whole when a writer is done (`Ledger::store_projection`: the end of an ingest,
//! a close, serve's shutdown), from the state it holds then, and names the record it covers
//! (seq and chain hash) like the snapshot. A read uses it only when that is exactly where the
//! store ends; otherwise, and when it is damaged, the state is loaded as before. Like the
//! snapshot, it holds only what the log determines, so the same log gives the same bytes.
//!
//! ```text
//! magic "PREMIA\0P" | kind [4] | format u32 | toc_at u64 | toc_len u64 | toc_crc32 u32 | header_crc32 u32
//! sections, one per period (bincode, LZ4, each with its CRC-32 in the table of contents)
//! table of contents (bincode): covers, scheme, figures span, (period, offset, length, crc) per section
//! ```
//! (integers big-endian.) A read checks the header, then the table of contents, then the one
//! section it needs, each against its checksum, with every decode bounded by the bytes it reads.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use premia_core::event::Id;
use premia_core::figures::{Figures, ManagerFigures};
use premia_core::fold::{Entry, LedgerState, ManagerBook};
use premia_core::statement::EntryFacts;
use premia_core::{Period, Scheme};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::checked_file::decode_exact;
use crate::error::LedgerError;
use crate::log::Hash;

pub(crate) const PROJECTION_FILE: &str = "periods.bin";
const MAGIC: &[u8; 8] = b"PREMIA\0P";
pub const PROJECTION_KIND: &[u8; 4] = b"PRDS";
/// Bumped whenever the layout changes, and with the snapshot's format (whose types, books and
/// entries, it shares): an older file is then ignored, as a stale one is.
pub const PROJECTION_FORMAT: u32 = 1000 + crate::snapshot::SNAPSHOT_FORMAT;
const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 8 + 4 + 4;
/// A table of contents is a few hundred bytes per period; anything larger is damage.
const MAX_TOC_LEN: u64 = 64 << 20;
/// Figures are stored per period only over a span of dates this long (a hundred years);
/// beyond it, figures are read from the state.
const MAX_FIGURES_MONTHS: usize = 1200;

/// The record of the log a projection was written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Covers {
    pub last_seq: u64,
    pub last_hash: Hash,
}

/// Which periods' figures the sections hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum FiguresCover {
    /// No date, book or close anywhere: every period's figures name no manager.
    Nothing,
    /// Every period from `first` to `last` has a section with its figures; before `first` no
    /// manager has figures; after `last`, every period has the figures `beyond`.
    Span { first: Period, last: Period, beyond: Vec<StoredFigures> },
    /// The dates span too many months: figures are read from the state.
    FromState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Toc {
    pub covers: Covers,
    pub scheme: Scheme,
    pub figures: FiguresCover,
    pub sections: Vec<SectionRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SectionRef {
    pub period: Period,
    pub offset: u64,
    pub len: u64,
    pub crc: u32,
}

/// What the statement and figures of one period read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Section {
    /// The seq of the close and its chain hash (for the seal), when closed.
    pub closed: Option<(u64, Hash)>,
    pub books: BTreeMap<Id, ManagerBook>,
    /// The period's entries in booking order, and what each one's view reads from its deal
    /// and payment (`facts[i]` for `entries[i]`).
    pub entries: Vec<Entry>,
    pub facts: Vec<EntryFacts>,
    /// Empty unless the figures span covers the period.
    pub figures: Vec<StoredFigures>,
}

/// [`ManagerFigures`] with its amounts exact (the JSON form rounds them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredFigures {
    manager_id: String,
    /// Deals won, distinct clients, repeat clients, cancellations by fault, overdue deals.
    counts: [u64; 5],
    #[serde(with = "premia_core::money::decimal_bytes")]
    deals_amount: Decimal,
    #[serde(with = "premia_core::money::decimal_bytes")]
    average_deal_amount: Decimal,
    #[serde(with = "premia_core::money::decimal_bytes")]
    money_received: Decimal,
    #[serde(with = "premia_core::money::decimal_bytes")]
    margin_received: Decimal,
    #[serde(with = "premia_core::money::decimal_bytes")]
    overdue_receivables: Decimal,
    #[serde(with = "premia_core::money::decimal_bytes::option")]
    plan_achievement: Option<Decimal>,
}

impl StoredFigures {
    fn of(m: &ManagerFigures) -> StoredFigures {
        StoredFigures {
            manager_id: m.manager_id.clone(),
            counts: [
                m.deals_won,
                m.distinct_clients,
                m.repeat_clients,
                m.cancellations_by_fault,
                m.overdue_deals,
            ],
            deals_amount: m.deals_amount,
            average_deal_amount: m.average_deal_amount,
            money_received: m.money_received,
            margin_received: m.margin_received,
            overdue_receivables: m.overdue_receivables,
            plan_achievement: m.plan_achievement,
        }
    }

    fn figures(&self) -> ManagerFigures {
        let [deals_won, distinct_clients, repeat_clients, cancellations_by_fault, overdue_deals] = self.counts;
        ManagerFigures {
            manager_id: self.manager_id.clone(),
            deals_won,
            deals_amount: self.deals_amount,
            average_deal_amount: self.average_deal_amount,
            distinct_clients,
            repeat_clients,
            money_received: self.money_received,
            margin_received: self.margin_received,
            cancellations_by_fault,
            overdue_deals,
            overdue_receivables: self.overdue_receivables,
            plan_achievement: self.plan_achievement,
        }
    }
}

/// The figures of `period` as `LedgerState::figures` gives them, from stored ones.
pub(crate) fn figures_of(scheme: &Scheme, period: Period, stored: &[StoredFigures]) -> Figures {
    Figures {
        period: period.to_string(),
        currency: scheme.currency.clone(),
        managers: stored.iter().map(StoredFigures::figures).collect(),
    }
}

pub(crate) fn projection_path(dir: &Path) -> PathBuf {
    dir.join(PROJECTION_FILE)
}

/// Where the projection's sections come from: the state, the period's stored entries and the
/// chain hash of a record (a close's, for its seal).
pub(crate) struct Source<'a> {
    pub state: &'a LedgerState,
    pub last_hash: Hash,
    pub entries_of: &'a dyn Fn(Period) -> Result<Vec<Entry>, LedgerError>,
    pub hash_of: &'a dyn Fn(u64) -> Result<Hash, LedgerError>,
}

/// The figures of each period of the figures span, by period.
type SpanFigures = BTreeMap<Period, Vec<StoredFigures>>;

/// Every period with a section (those with a book or a close, and those of the figures span),
/// and the figures of the span, worked out in one pass.
fn periods_and_figures(state: &LedgerState) -> (Vec<Period>, FiguresCover, SpanFigures) {
    let mut periods: Vec<Period> = state.books().keys().chain(state.closed_periods().keys()).copied().collect();
    let mut figures = SpanFigures::new();
    let cover = match state.figures_span() {
        None => FiguresCover::Nothing,
        Some((first, last)) => {
            let mut span = vec![first];
            while *span.last().expect("starts with one") < last && span.len() <= MAX_FIGURES_MONTHS {
                span.push(span.last().expect("not empty").next());
            }
            if span.len() > MAX_FIGURES_MONTHS {
                FiguresCover::FromState
            } else {
                periods.extend(&span);
                span.push(last.next());
                for (period, of) in span.iter().zip(state.figures_of_periods(&span)) {
                    figures.insert(*period, of.managers.iter().map(StoredFigures::of).collect());
                }
                let beyond = figures.remove(&last.next()).expect("worked out with the span");
                FiguresCover::Span { first, last, beyond }
            }
        }
    };
    periods.sort();
    periods.dedup();
    (periods, cover, figures)
}

fn section(source: &Source<'_>, period: Period, figures: &mut SpanFigures) -> Result<Section, LedgerError> {
    let state = source.state;
    let entries = (source.entries_of)(period)?;
    let facts = entries.iter().map(|e| state.entry_facts(e)).collect();
    let closed = match state.closed_periods().get(&period) {
        Some(&seq) => Some((seq, (source.hash_of)(seq)?)),
        None => None,
    };
    let figures = figures.remove(&period).unwrap_or_default();
    Ok(Section { closed, books: state.books().get(&period).cloned().unwrap_or_default(), entries, facts, figures })
}

fn header(format: u32, toc_at: u64, toc_len: u64, toc_crc: u32) -> [u8; HEADER_LEN] {
    let mut bytes = [0u8; HEADER_LEN];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..12].copy_from_slice(PROJECTION_KIND);
    bytes[12..16].copy_from_slice(&format.to_be_bytes());
    bytes[16..24].copy_from_slice(&toc_at.to_be_bytes());
    bytes[24..32].copy_from_slice(&toc_len.to_be_bytes());
    bytes[32..36].copy_from_slice(&toc_crc.to_be_bytes());
    let header_crc = crc32fast::hash(&bytes[..36]);
    bytes[36..40].copy_from_slice(&header_crc.to_be_bytes());
    bytes
}

fn encode_error(e: bincode::Error) -> LedgerError {
    LedgerError::Decode(format!("the period projection cannot be encoded: {e}"))
}

/// Writes the projection of `source` to `out` (from its start): the same bytes for the same log.
pub(crate) fn encode_projection<W: Write + Seek>(out: &mut W, source: &Source<'_>) -> Result<(), LedgerError> {
    let io = |e: std::io::Error| LedgerError::Decode(format!("the period projection cannot be written: {e}"));
    let (periods, figures, mut span_figures) = periods_and_figures(source.state);
    out.write_all(&[0u8; HEADER_LEN]).map_err(io)?;
    let mut offset = HEADER_LEN as u64;
    let mut sections = Vec::with_capacity(periods.len());
    for period in periods {
        let encoded = bincode::serialize(&section(source, period, &mut span_figures)?).map_err(encode_error)?;
        let bytes = lz4_flex::compress_prepend_size(&encoded);
        out.write_all(&bytes).map_err(io)?;
        sections.push(SectionRef { period, offset, len: bytes.len() as u64, crc: crc32fast::hash(&bytes) });
        offset += bytes.len() as u64;
    }
    let covers = Covers { last_seq: source.state.next_seq() - 1, last_hash: source.last_hash };
    let toc = Toc { covers, scheme: source.state.scheme().clone(), figures, sections };
    let toc_bytes = bincode::serialize(&toc).map_err(encode_error)?;
    out.write_all(&toc_bytes).map_err(io)?;
    out.seek(SeekFrom::Start(0)).map_err(io)?;
    out.write_all(&header(PROJECTION_FORMAT, offset, toc_bytes.len() as u64, crc32fast::hash(&toc_bytes))).map_err(io)?;
    out.flush().map_err(io)
}

/// Writes the projection to `DIR/periods.bin`: a temporary file, synced, renamed into place.
pub(crate) fn write_projection(dir: &Path, source: &Source<'_>) -> Result<(), LedgerError> {
    let path = projection_path(dir);
    let io = |source| LedgerError::Snapshot { dir: dir.to_path_buf(), source };
    let temporary = path.with_extension("tmp");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&temporary).map_err(io)?);
    encode_projection(&mut out, source)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, &path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// What is in `DIR/periods.bin`.
pub(crate) enum ProjectionRead<T> {
    /// Absent, or written by another version of premia: not damage.
    Unused(String),
    /// Damaged: the sentence says how.
    Damaged(String),
    Read(T),
}

/// The projection file, its header and table of contents checked.
pub(crate) struct OpenProjection {
    file: File,
    pub toc: Toc,
    toc_at: u64,
}

/// Opens the projection and reads its table of contents.
pub(crate) fn open_projection(dir: &Path) -> ProjectionRead<OpenProjection> {
    let mut file = match File::open(projection_path(dir)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ProjectionRead::Unused("it is absent".into()),
        Err(e) => return ProjectionRead::Damaged(format!("it cannot be read: {e}")),
    };
    match read_toc(&mut file) {
        Ok(ProjectionRead::Read((toc, toc_at))) => ProjectionRead::Read(OpenProjection { file, toc, toc_at }),
        Ok(ProjectionRead::Unused(why)) => ProjectionRead::Unused(why),
        Ok(ProjectionRead::Damaged(why)) => ProjectionRead::Damaged(why),
        Err(e) => ProjectionRead::Damaged(format!("it cannot be read: {e}")),
    }
}

fn read_toc(file: &mut File) -> std::io::Result<ProjectionRead<(Toc, u64)>> {
    let damaged = |why: String| Ok(ProjectionRead::Damaged(why));
    let found_len = file.metadata()?.len();
    if found_len < HEADER_LEN as u64 {
        return damaged("it is shorter than its header".into());
    }
    let mut head = [0u8; HEADER_LEN];
    file.read_exact(&mut head)?;
    let u32_at = |at: usize| u32::from_be_bytes(head[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_be_bytes(head[at..at + 8].try_into().expect("8 bytes"));
    if crc32fast::hash(&head[..36]) != u32_at(36) || &head[..8] != MAGIC || &head[8..12] != PROJECTION_KIND {
        return damaged("its header is damaged (checksum mismatch)".into());
    }
    if u32_at(12) != PROJECTION_FORMAT {
        return Ok(ProjectionRead::Unused(format!("it is of format {}", u32_at(12))));
    }
    let (toc_at, toc_len) = (u64_at(16), u64_at(24));
    if toc_len > MAX_TOC_LEN || toc_at < HEADER_LEN as u64 || toc_at.checked_add(toc_len) != Some(found_len) {
        return damaged(format!("it is {found_len} bytes long where its header says {}", toc_at.saturating_add(toc_len)));
    }
    file.seek(SeekFrom::Start(toc_at))?;
    let mut bytes = vec![0u8; toc_len as usize];
    file.read_exact(&mut bytes)?;
    if crc32fast::hash(&bytes) != u32_at(32) {
        return damaged("its table of contents is damaged (checksum mismatch)".into());
    }
    match decode_exact::<Toc>(&bytes) {
        Ok(toc) => Ok(ProjectionRead::Read((toc, toc_at))),
        Err(e) => damaged(format!("its table of contents cannot be decoded: {e}")),
    }
}

impl OpenProjection {
    /// The section of `period` (`None` when it has none), checked against its checksum.
    pub(crate) fn section(&mut self, period: Period) -> Result<Option<Section>, String> {
        let Some(at) = self.toc.sections.iter().find(|s| s.period == period).copied() else { return Ok(None) };
        let fits = at.offset >= HEADER_LEN as u64 && at.offset.checked_add(at.len).is_some_and(|end| end <= self.toc_at);
        if !fits {
            return Err(format!("its section of {period} lies outside the file"));
        }
        let mut bytes = vec![0u8; at.len as usize];
        self.file
            .seek(SeekFrom::Start(at.offset))
            .and_then(|_| self.file.read_exact(&mut bytes))
            .map_err(|e| format!("its section of {period} cannot be read: {e}"))?;
        if crc32fast::hash(&bytes) != at.crc {
            return Err(format!("its section of {period} is damaged (checksum mismatch)"));
        }
        // The checksum matched, so the length LZ4 prepends is the one written; LZ4 compresses
        // at most 255 to 1 all the same.
        let claimed = bytes.get(..4).map_or(u64::MAX, |b| u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes"))));
        if claimed > at.len.saturating_mul(255) {
            return Err(format!("its section of {period} claims {claimed} bytes once decompressed"));
        }
        let encoded = lz4_flex::decompress_size_prepended(&bytes)
            .map_err(|e| format!("its section of {period} does not decompress: {e}"))?;
        let section: Section =
            decode_exact(&encoded).map_err(|e| format!("its section of {period} cannot be decoded: {e}"))?;
        if section.entries.len() != section.facts.len() {
            return Err(format!("its section of {period} holds facts for another number of entries"));
        }
        Ok(Some(section))
    }
}
