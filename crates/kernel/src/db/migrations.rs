//! The database's migrations: one sequence for the whole platform, embedded in the binary.
//! Where SQLite and PostgreSQL take the same SQL the file is in `migrations/common/`; where the
//! dialects differ each has its own in `migrations/sqlite/` and `migrations/postgres/`.
//!
//! sqlx records each applied migration's SHA-384 and refuses to start when a file no longer
//! matches it, so a landed file is never edited: a change is a new migration. Where a file
//! lives does not enter the checksum.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use super::Backend;

enum Sql {
    Common(&'static str),
    PerBackend { sqlite: &'static str, postgres: &'static str },
}

/// (file name, SQL), in order.
type Entry = (&'static str, Sql);

macro_rules! common {
    ($file:literal) => {
        ($file, Sql::Common(include_str!(concat!("../../migrations/common/", $file))))
    };
}

macro_rules! per_backend {
    ($file:literal) => {
        (
            $file,
            Sql::PerBackend {
                sqlite: include_str!(concat!("../../migrations/sqlite/", $file)),
                postgres: include_str!(concat!("../../migrations/postgres/", $file)),
            },
        )
    };
}

const MIGRATIONS: &[Entry] = &[
    per_backend!("0001_identity.sql"),
    common!("0002_builtin_roles.sql"),
    common!("0003_platform_settings.sql"),
    per_backend!("0004_ledger.sql"),
    common!("0005_protect.sql"),
    common!("0006_corrections.sql"),
    common!("0007_monitoring.sql"),
    common!("0008_services.sql"),
    common!("0009_registration.sql"),
    common!("0010_appointments.sql"),
    common!("0011_notification_email.sql"),
    common!("0012_exchange.sql"),
    common!("0013_registry_databases.sql"),
    common!("0014_registry_key_order.sql"),
    common!("0015_consent_signatures.sql"),
    common!("0016_consent_webhooks.sql"),
    common!("0017_consent_audit.sql"),
    common!("0018_registry_systems.sql"),
    common!("0019_alert_regions.sql"),
    common!("0020_administrators_in_jurisdiction.sql"),
    common!("0021_exchange_call_counts.sql"),
    common!("0022_known_devices.sql"),
    common!("0023_voice.sql"),
    common!("0024_voice_extension_merge.sql"),
    common!("0025_tallies.sql"),
    common!("0026_assessment.sql"),
    common!("0027_openness.sql"),
    common!("0028_public_ledgers.sql"),
    common!("0029_open_data.sql"),
];

/// The migrations of one backend, versioned and described as sqlx names them from their file
/// names (`0002_builtin_roles.sql`: version 2, "builtin roles").
pub fn migrator(backend: Backend) -> Result<Migrator, String> {
    let mut migrations = Vec::with_capacity(MIGRATIONS.len());
    for (file, sql) in MIGRATIONS {
        let (version, name) = file
            .strip_suffix(".sql")
            .and_then(|stem| stem.split_once('_'))
            .ok_or_else(|| format!("migration {file} is not named NNNN_name.sql"))?;
        let version: i64 = version.parse().map_err(|_| format!("migration {file} has no version"))?;
        let sql = match (sql, backend) {
            (Sql::Common(sql), _) | (Sql::PerBackend { sqlite: sql, .. }, Backend::Sqlite) => *sql,
            (Sql::PerBackend { postgres, .. }, Backend::Postgres) => *postgres,
        };
        migrations.push(Migration::new(
            version,
            Cow::Owned(name.replace('_', " ")),
            MigrationType::Simple,
            AssertSqlSafe(sql).into_sql_str(),
            false,
        ));
    }
    Ok(Migrator::with_migrations(migrations))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in the migration folders is in the list, once, and the list is in order.
    #[test]
    fn every_file_is_listed() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut on_disk = Vec::new();
        for dir in ["common", "sqlite", "postgres"] {
            for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
                on_disk.push(format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy()));
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = MIGRATIONS
            .iter()
            .flat_map(|(file, sql)| match sql {
                Sql::Common(_) => vec![format!("common/{file}")],
                Sql::PerBackend { .. } => vec![format!("sqlite/{file}"), format!("postgres/{file}")],
            })
            .collect();
        listed.sort();
        assert_eq!(on_disk, listed);
        let files: Vec<&str> = MIGRATIONS.iter().map(|(f, _)| *f).collect();
        let mut sorted = files.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(files, sorted);
    }

    /// The checksums databases in the field have recorded: a landed migration never changes
    /// (sqlx would refuse to start on such a database). A new migration adds its line here.
    #[test]
    fn landed_migrations_are_unchanged() {
        let landed: &[(i64, &str, &str)] = &[
            (
                1,
                "a00ad4724d64d11dadbda78a6181e3ccb41839c119a86a84f9e7e0670c43af2bf398228669e7df06de7369e79028df2d",
                "f012db81259ee3bedc5009d20382da8fe40a45edd1f42a33e9d89a788b89220579329f8844bdd8a972689cef54249e5b",
            ),
            (2, "07eb54a44e9324738a295232e4b083c4c1d90dc80cbc5c80836fcd51324b72febe47736e379075554eddf42b9343f93f", ""),
            (3, "c52c4a8037867260034899dec811fa26e4aa779ab5e5e795c8c74cd325c0a0fb3b820680a024008de4ad235db1a32302", ""),
            (
                4,
                "6f7aab08a27a612f790ae01b774a7fdba9094f4ad88302565e3026a0b3d67f1a07fc293410dcf3299a14c03d984ae69f",
                "800a44d50864a9d8080774c581089dacbcccff6547f620c0b55eb2184234b9ac0959c6541e7407c7765cbb54712b9a5c",
            ),
            (5, "6bfcf171159125a219e40d2f0408dd0b72fa124bb04d5973cc3c4b0166a9ae2bbef511862df8b673e66c7709837468bb", ""),
            (6, "821dfe7f8ac79302fadac548d9669b2ca32e5a86826359a9b6d9f8fc488e92c8f9fcb1919e9f2067855496a2f9a4b0af", ""),
            (7, "82b75e406053b1183176fd123d7b5fcd2277cb3c1a0b64c938622d689206fbf455d8e3246b424477d2fba60de61da3cf", ""),
            (8, "fb64c07b6f5412ae6bd58f720eb9ed0a1cfeeaf0a2f2049c2a571c715a66f4fedcea4442f875061566a701dc33e6ed3c", ""),
            (9, "a80a9edbd1dbd931337685bd7009fede32286e988c7a5c8a74887520a26db9ce927b4184756a43129056913904e8b4db", ""),
            (
                10,
                "8803e76f015275aef641ec74e8fce604b45b0cfdca81db89330cf9a2904bb5b6047ad9a917ce38b75c7f57045c0f4340",
                "",
            ),
            (
                11,
                "46032ea54bce27ba5b26af878759a525395d2c6b8bd30bc72f78e1552b8b159f82ec0b69b6ae6edbbd16d290a840ad3c",
                "",
            ),
            (
                12,
                "f8a32fa466975b6bdf60dde8651ac87362b5a3630d32748f943e06851d37cb7a8992fe79c971380ff6d44b54435306a0",
                "",
            ),
            (
                13,
                "bd353ac70dad27db74f1ce44349c489ee5f5a5062c10e57c87eddf3010e4cec79b76dedfc4227b07df84c742475cd5e0",
                "",
            ),
            (
                14,
                "ebd2b2ecfa3f33b186cb53c5c12822f243943f3510bd2f20df35e6af94e9671cb515e303cd2c3ce2fecbc27db6dd4297",
                "",
            ),
            (
                15,
                "c772cfef4e19f01c66d0045aa2e66b8b40e2fe15397cfbfa513bc640ccf82e84b7b227428c2cda71b59982e5d7be4fea",
                "",
            ),
            (
                16,
                "c6a4f1729126c2394a8703398ce079b009699f5eb408c182d3d1c397d00113f7eab9687fccdcab275df718ddf6943f97",
                "",
            ),
            (
                17,
                "e69cba8f035981bdc9efd780e2384a0ada33e0bf8490cf3011e9dc1772416ee0a4d30da289aaea4f6c6596f4441fe3da",
                "",
            ),
        ];
        let sqlite = migrator(Backend::Sqlite).unwrap();
        let postgres = migrator(Backend::Postgres).unwrap();
        for (version, on_sqlite, on_postgres) in landed {
            let on_postgres = if on_postgres.is_empty() { on_sqlite } else { on_postgres };
            let find = |m: &Migrator| m.iter().find(|x| x.version == *version).map(|x| hex::encode(&*x.checksum));
            assert_eq!(find(&sqlite).as_deref(), Some(*on_sqlite), "SQLite migration {version}");
            assert_eq!(find(&postgres).as_deref(), Some(*on_postgres), "PostgreSQL migration {version}");
        }
        assert_eq!(sqlite.iter().next().map(|m| m.description.to_string()).as_deref(), Some("identity"));
    }
}
