//! What an administrator asks of a running `serve`: a consistent backup of the ledger
//! (docs/OPERATIONS.md), taken on the serving loop between two batches.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use premia_ledger::backup::BackupReport;
use premia_ledger::Ledger;
use serde_json::{json, Value};

use crate::auth::Role;
use crate::errors::{forbidden, ApiError};
use crate::state::ApiState;

/// A backup copies the whole store: minutes for a very large ledger, never a request timeout.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(3600);

/// `POST /v1/admin/backup`: the ledger copied into a new directory under the backup directory
/// serve was given, named by the last log record it holds.
pub(crate) async fn backup(State(state): State<ApiState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    if *state.role(&headers)? != Role::Admin {
        return Err(forbidden("only the admin role takes backups"));
    }
    let Some(dir) = state.backup_dir().map(Path::to_path_buf) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this serve has no backup directory: start it with --backup-dir DIR (or backup_dir in the config file's [http] section)",
        ));
    };
    let (report, fresh) = state
        .ask(BACKUP_TIMEOUT, move |ledger, _| back_up_into(ledger, &dir))
        .await?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(json!({
        "path": report.path,
        "last_seq": report.last_seq,
        "chain_hash": report.chain_hash,
        "rejections": report.rejections,
        "created": fresh,
    })))
}

/// Backs up into `dir/premia-backup-seqNNNNNNNNNNNN` (through a temporary name, so a directory
/// with that name is always whole); one that already holds that point is kept and named.
fn back_up_into(ledger: &Ledger, dir: &Path) -> Result<(BackupReport, bool), String> {
    let partial = dir.join(format!(".premia-backup-{}.partial", std::process::id()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| format!("cannot clear {}: {e}", partial.display()))?;
    }
    let mut report = ledger.back_up(&partial).map_err(|e| e.to_string())?;
    let done: PathBuf = dir.join(format!("premia-backup-seq{:012}", report.last_seq));
    if done.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| format!("cannot clear {}: {e}", partial.display()))?;
        report.path = done;
        return Ok((report, false));
    }
    std::fs::rename(&partial, &done).map_err(|e| format!("cannot name the backup {}: {e}", done.display()))?;
    report.path = done;
    Ok((report, true))
}
