//! How `footfall user add` reaches a running server. redb locks its file for one process, so
//! while the server runs the command cannot open `accounts.redb`; it drops a request into
//! `<data-dir>/spool/user-add/` instead, and the server (polling every second) applies it and
//! writes a reply beside it. The request carries the argon2 hash, never the password. Only who can
//! write the data directory can use this — the same people who can read the admin token there.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::accounts::audit::Actor;
use crate::accounts::{AccountError, Accounts};

#[derive(Debug, Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the server did not answer within {0:?}; is it running and is this its data directory?")]
    NoAnswer(Duration),
    #[error("{0}")]
    Refused(String),
    #[error("damaged spool file: {0}")]
    Decode(#[from] serde_json::Error),
}

#[derive(Serialize, Deserialize)]
pub struct UserAddRequest {
    pub email: String,
    pub password_hash: String,
    pub owner: bool,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    user_id: Option<String>,
    error: Option<String>,
}

pub fn spool_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("spool").join("user-add")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.to_path_buf(), source }
}

/// Hands a request to the running server and waits for its answer; returns the new user's id.
pub fn submit(data_dir: &Path, request: &UserAddRequest, wait: Duration) -> Result<String, SpoolError> {
    let dir = spool_dir(data_dir);
    fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io(&dir))?;
    let name = hex::encode(rand::random::<[u8; 8]>());
    let tmp = dir.join(format!("{name}.tmp"));
    let req = dir.join(format!("{name}.json"));
    let reply = dir.join(format!("{name}.reply"));
    {
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io(&tmp))?;
        file.write_all(&serde_json::to_vec(request)?).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
    }
    // The server only picks up `.json` files, so it never sees a half-written request.
    fs::rename(&tmp, &req).map_err(io(&req))?;
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Ok(bytes) = fs::read(&reply) {
            let _ = fs::remove_file(&reply);
            let answer: Reply = serde_json::from_slice(&bytes)?;
            return match (answer.user_id, answer.error) {
                (Some(id), _) => Ok(id),
                (None, e) => Err(SpoolError::Refused(e.unwrap_or_else(|| "refused".into()))),
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Withdraw the request, unless the server took it in the meantime.
    if fs::remove_file(&req).is_err() {
        std::thread::sleep(Duration::from_secs(2));
        if let Ok(bytes) = fs::read(&reply) {
            let _ = fs::remove_file(&reply);
            if let Ok(Reply { user_id: Some(id), .. }) = serde_json::from_slice(&bytes) {
                return Ok(id);
            }
        }
    }
    Err(SpoolError::NoAnswer(wait))
}

/// Applies every waiting request (server side); returns how many.
pub fn process(accounts: &Accounts, data_dir: &Path) -> usize {
    let dir = spool_dir(data_dir);
    let Ok(entries) = fs::read_dir(&dir) else { return 0 };
    let mut done = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        // Take the request first: if the command withdrew it meanwhile, it is not applied.
        let taken = path.with_extension("taken");
        if fs::rename(&path, &taken).is_err() {
            continue;
        }
        let outcome = fs::read(&taken)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<UserAddRequest>(&b).map_err(|e| e.to_string()))
            .and_then(|r| {
                accounts.create_user_hashed(&r.email, r.password_hash, r.owner, &Actor::Cli).map_err(|e| match e {
                    AccountError::Store(e) => {
                        tracing::error!(error = %e, "user add from the spool");
                        "the server could not store the user".to_string()
                    }
                    other => other.to_string(),
                })
            });
        let reply = match outcome {
            Ok(user) => {
                tracing::info!(user = %user.id, owner = user.instance_owner, "user added by `footfall user add`");
                Reply { user_id: Some(user.id.to_string()), error: None }
            }
            Err(error) => Reply { user_id: None, error: Some(error) },
        };
        let reply_path = path.with_extension("reply");
        let tmp = path.with_extension("replytmp");
        let written = serde_json::to_vec(&reply)
            .map_err(std::io::Error::other)
            .and_then(|bytes| fs::write(&tmp, bytes))
            .and_then(|()| fs::rename(&tmp, &reply_path));
        if let Err(e) = written {
            tracing::error!(error = %e, path = %reply_path.display(), "writing a spool reply");
        }
        let _ = fs::remove_file(&taken);
        done += 1;
    }
    done
}
