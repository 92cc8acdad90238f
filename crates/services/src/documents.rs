//! Material uploads: size and type limits, the type sniffed from the content (never the
//! file name), stored content-addressed (SHA-256) under the data directory, and an optional
//! scan command (a virus scanner) that must pass before anything is kept.

use chrono::{DateTime, Utc};
use kernel::error::ErrorCode;
use sha2::{Digest, Sha256};

use super::{DocumentView, Error, Services, internal, repo};
use identity::Principal;
use kernel::db::{millis, new_id};

/// The types accepted, by their first bytes.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// Whether an upload of this (sniffed) type is a photo.
fn is_photo(content_type: &str) -> bool {
    matches!(content_type, "image/png" | "image/jpeg")
}

/// The last path component, without control characters, at most 200 characters.
fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if cleaned.trim().is_empty() { "upload".into() } else { cleaned }
}

kernel::area! {
    /// 我的材料: uploaded materials, typed by content and checked before they are kept.
    Documents of Services
}

impl Documents<'_> {
    /// Stores an upload for the caller; attach it to an application by naming its id.
    pub async fn upload(
        &self,
        me: &Principal,
        filename: &str,
        material: Option<&str>,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<DocumentView, Error> {
        self.check_upload_size(bytes)?;
        let content_type = sniff(bytes).ok_or_else(|| {
            Error::conflict(
                ErrorCode::UnsupportedFileType,
                "upload a PDF, PNG or JPEG file (the content decides, not the name)",
            )
        })?;
        let sha = self.store_content(bytes).await?;
        let material = material.map(|m| m.trim().chars().take(100).collect::<String>()).filter(|m| !m.is_empty());
        let row = repo::DocumentRow {
            id: new_id(),
            owner_id: me.account_id.clone(),
            sha256: sha,
            filename: clean_filename(filename),
            content_type: content_type.into(),
            size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            application_id: None,
            material,
            created_at: millis(now),
        };
        let mut tx = self.inner.db.begin().await?;
        repo::insert_document(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(document_view(row))
    }

    /// The caller's own uploads that are photos (PNG or JPEG), by id, in the order given: for
    /// another module to keep with something of the caller's (a 12345 request). They stay in
    /// 我的材料.
    pub async fn photos(&self, me: &Principal, ids: &[String]) -> Result<Vec<DocumentView>, Error> {
        let mut c = self.conn().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = repo::document(&mut c, id.trim()).await?.filter(|d| d.owner_id == me.account_id);
            let row = row.ok_or_else(|| Error::invalid("photos", "choose photos among your own uploads"))?;
            if !is_photo(&row.content_type) {
                return Err(Error::invalid("photos", format!("{} is not a photo (PNG or JPEG)", row.filename)));
            }
            out.push(document_view(row));
        }
        Ok(out)
    }

    /// An upload and its bytes. The caller has checked that the reader may see it: the module
    /// that keeps it with a record of its own (a 12345 request's person, department or
    /// dispatchers).
    pub async fn content(&self, id: &str) -> Result<(DocumentView, Vec<u8>), Error> {
        let mut c = self.conn().await?;
        let row = repo::document(&mut c, id).await?.ok_or(Error::NotFound("document"))?;
        drop(c);
        let path = self.inner.uploads.dir.join(row.sha256.get(..2).unwrap_or("00")).join(&row.sha256);
        let bytes = tokio::fs::read(&path).await.map_err(internal)?;
        Ok((document_view(row), bytes))
    }

    /// The caller's uploads that are photos, newest first: those [`Documents::photos`] takes.
    pub async fn my_photos(&self, me: &Principal) -> Result<Vec<DocumentView>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::unattached_documents(&mut c, &me.account_id).await?;
        Ok(rows.into_iter().filter(|d| is_photo(&d.content_type)).map(document_view).collect())
    }

    /// The caller's uploads not yet attached to an application (我的材料), newest first.
    pub async fn my_uploads(&self, me: &Principal) -> Result<Vec<DocumentView>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::unattached_documents(&mut c, &me.account_id).await?.into_iter().map(document_view).collect())
    }
}

pub(super) fn document_view(row: repo::DocumentRow) -> DocumentView {
    DocumentView {
        id: row.id,
        filename: row.filename,
        content_type: row.content_type,
        size: row.size,
        sha256: row.sha256,
        material: row.material,
    }
}

impl Services {
    pub(super) fn check_upload_size(&self, bytes: &[u8]) -> Result<(), Error> {
        let policy = &self.inner.uploads;
        if bytes.is_empty() {
            return Err(Error::invalid("file", "the file is empty"));
        }
        if bytes.len() > policy.max_bytes {
            return Err(Error::conflict(
                ErrorCode::FileTooLarge,
                format!("files may be at most {} MiB", policy.max_bytes / (1024 * 1024)),
            ));
        }
        Ok(())
    }

    /// Keeps `bytes` under their SHA-256 in the content-addressed store, after the scan
    /// command (if any) passed them; returns the hash.
    pub(super) async fn store_content(&self, bytes: &[u8]) -> Result<String, Error> {
        let policy = &self.inner.uploads;
        let sha = hex::encode(Sha256::digest(bytes));
        let dir = policy.dir.join(sha.get(..2).unwrap_or("00"));
        tokio::fs::create_dir_all(&dir).await.map_err(internal)?;
        let path = dir.join(&sha);
        if tokio::fs::metadata(&path).await.is_err() {
            let staging = dir.join(format!(".{sha}.{}", new_id()));
            tokio::fs::write(&staging, bytes).await.map_err(internal)?;
            if let Some(command) = &policy.scan_command
                && let Some((program, args)) = command.split_first()
            {
                let status = tokio::process::Command::new(program).args(args).arg(&staging).status().await;
                if !status.is_ok_and(|s| s.success()) {
                    let _ = tokio::fs::remove_file(&staging).await;
                    return Err(Error::conflict(ErrorCode::UploadRejected, "the file did not pass the security scan"));
                }
            }
            tokio::fs::rename(&staging, &path).await.map_err(internal)?;
        }
        Ok(sha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_the_type() {
        assert_eq!(sniff(b"%PDF-1.7 ..."), Some("application/pdf"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"MZ\x90\x00 an exe named photo.jpg"), None);
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\x\\身份证.pdf"), "身份证.pdf");
        assert_eq!(clean_filename("\u{0}"), "upload");
    }
}
