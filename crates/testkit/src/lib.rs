//! Test support: a fresh database per test on SQLite (temp dir) or PostgreSQL (a throwaway
//! database on the server named by TONGBAN_TEST_DATABASE_URL, else 127.0.0.1:5432).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use identity::Identity;
use identity::SessionPolicy;
use kernel::db::Db;
use kernel::secrets::{MasterKey, SecretString};
use sqlx::Connection;

pub fn admin_url() -> String {
    std::env::var("TONGBAN_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that is removed when dropped.
pub enum Scratch {
    Sqlite(tempfile::TempDir),
    Postgres { admin: String, name: String },
}

impl Scratch {
    pub async fn sqlite() -> (Scratch, String) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        (Scratch::Sqlite(dir), url)
    }

    pub async fn postgres() -> (Scratch, String) {
        sqlx::any::install_default_drivers();
        let admin = admin_url();
        let name = format!("tb_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin} is not reachable ({e}); run the README test command or set TONGBAN_TEST_DATABASE_URL")
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
        conn.close().await.ok();
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("bad admin url {admin}"),
        };
        (Scratch::Postgres { admin, name }, url)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Scratch::Postgres { admin, name } = self {
            let (admin, name) = (admin.clone(), name.clone());
            // Drop runs outside async; use a private runtime on its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                                .execute(&mut conn)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestDb {
    pub policy: SessionPolicy,
    pub key: [u8; 32],
    pub db: Db,
    pub identity: Identity,
    pub backend: &'static str,
    _scratch: Scratch,
}

impl TestDb {
    /// The console of the operator who holds this database's master key.
    pub fn console(&self) -> identity::Console {
        self.identity.console(&MasterKey::from_bytes(self.key)).expect("the test database's own key")
    }

    /// A second node on the same database (its own caches).
    pub fn another_node(&self) -> Identity {
        Identity::new(self.db.clone(), MasterKey::from_bytes(self.key), self.policy)
    }

    pub async fn sqlite() -> TestDb {
        let (scratch, url) = Scratch::sqlite().await;
        TestDb::open(scratch, &url, "sqlite").await
    }

    pub async fn postgres() -> TestDb {
        let (scratch, url) = Scratch::postgres().await;
        TestDb::open(scratch, &url, "postgres").await
    }

    async fn open(scratch: Scratch, url: &str, backend: &'static str) -> TestDb {
        // One connection: a service that waits for a second connection while holding one
        // hangs here (and fails on the acquire timeout) instead of only under load.
        let db = Db::connect_with_pool(url, 1).await.unwrap();
        db.migrate().await.unwrap();
        let policy = SessionPolicy {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
            token_ttl: Duration::from_secs(3600),
            auth_cache: Duration::from_secs(2),
        };
        let identity = Identity::new(db.clone(), MasterKey::from_bytes([42u8; 32]), policy);
        identity.protector().ensure_key(chrono::Utc::now()).await.unwrap();
        TestDb { policy, key: [42u8; 32], db, identity, backend, _scratch: scratch }
    }
}

/// The two databases every storage test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What a test function takes: a fresh database ([`TestDb`]) or only the backend's name (the
/// end-to-end tests, which start the real binary on a database of their own).
pub trait Fixture: Sized {
    fn open(backend: Backend) -> impl std::future::Future<Output = Self> + Send;
}

impl Fixture for Backend {
    async fn open(backend: Backend) -> Backend {
        backend
    }
}

impl Fixture for TestDb {
    async fn open(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite().await,
            Backend::Postgres => TestDb::postgres().await,
        }
    }
}

/// Opens the test's fixture on `backend` and runs the test on it.
pub async fn run<F: Fixture, T: std::future::Future<Output = ()>>(test: impl FnOnce(F) -> T, backend: Backend) {
    test(F::open(backend).await).await
}

/// Generates one test per database for each named `async fn(F)` where `F` is a [`Fixture`].
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::run(super::$name, $crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::run(super::$name, $crate::Backend::Postgres).await
            }
        }
    )*};
}

/// The current TOTP code for a base32 secret at `unix` seconds.
pub fn totp_at(secret_base32: &str, unix: i64) -> String {
    let secret = identity::mfa::secret_from_base32(secret_base32).unwrap();
    identity::mfa::totp(&secret, "test").unwrap().generate(unix as u64)
}

/// A minimal SMTP relay that records what it is sent.
pub async fn fake_smtp() -> (u16, std::sync::Arc<tokio::sync::Mutex<String>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(tokio::sync::Mutex::new(String::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                let mut data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().await.push_str(&format!("{line}\n"));
                    let reply: &[u8] = if data {
                        if line == "." {
                            data = false;
                            b"250 queued\r\n"
                        } else {
                            continue;
                        }
                    } else if line.starts_with("EHLO") || line.starts_with("HELO") {
                        b"250 fake\r\n"
                    } else if line == "DATA" {
                        data = true;
                        b"354 go on\r\n"
                    } else if line == "QUIT" {
                        write.write_all(b"221 bye\r\n").await.ok();
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, seen)
}

/// Signs each account in once, with a token and (for staff) a TOTP code, and keeps its
/// principal: a TOTP code is good only once.
#[derive(Default)]
pub struct SignedIn(std::sync::Mutex<std::collections::HashMap<String, identity::Principal>>);

impl SignedIn {
    pub async fn principal(
        &self,
        identity: &Identity,
        username: &str,
        password: &str,
        totp_secret: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> identity::Principal {
        if let Some(p) = self.0.lock().unwrap().get(username) {
            return p.clone();
        }
        let pw = kernel::secrets::SecretString::new(password.into());
        let code = totp_secret.map(|s| totp_at(s, now.timestamp()));
        let attempt = identity::SignInAttempt { username, password: &pw, source: "10.0.0.1", device: None };
        let token = identity.sign_in().issue_token(&attempt, code.as_deref(), now).await.unwrap();
        let p = identity.sessions().token_principal(token.token.expose(), now).await.unwrap();
        self.0.lock().unwrap().insert(username.to_string(), p.clone());
        p
    }
}

/// The password of every test account.
pub const PASSWORD: &str = "Spring-Rain-over-Dianchi";
/// The authenticator secret (base32) of every test staff account.
pub const TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// A staff account of `department_code` with the test password and authenticator.
pub fn staff_account(username: &str, display_name: &str, department_code: &str) -> identity::NewAccount {
    identity::NewAccount {
        kind: Some(identity::AccountKind::Staff),
        username: username.into(),
        display_name: display_name.into(),
        password: Some(SecretString::new(PASSWORD.into())),
        totp_secret: Some(identity::mfa::secret_from_base32(TOTP).unwrap()),
        department_code: Some(department_code.into()),
        ..identity::NewAccount::default()
    }
}

/// A resident of `region_code` with the test password and mobile 13812345678.
pub fn resident_account(
    username: &str,
    name: &str,
    region_code: &str,
    id_number: &str,
    address: Option<&str>,
) -> identity::NewAccount {
    identity::NewAccount {
        kind: Some(identity::AccountKind::Citizen),
        username: username.into(),
        display_name: name.into(),
        password: Some(SecretString::new(PASSWORD.into())),
        region_code: Some(region_code.into()),
        profile: identity::Profile::Citizen {
            real_name: name.into(),
            id_number: id_number.into(),
            mobile: "13812345678".into(),
            address: address.map(str::to_string),
        },
        ..identity::NewAccount::default()
    }
}

/// The console founding an organisation in one transaction: regions, departments and
/// accounts, as every service test's world begins.
pub struct Founding<'t> {
    identity: &'t Identity,
    tx: kernel::db::WriteTx,
    org: identity::Capability<kernel::authz::OrganisationManage>,
    accounts: identity::Capability<kernel::authz::AccountCreate>,
    roles: identity::Capability<kernel::authz::RoleGrant>,
    now: chrono::DateTime<chrono::Utc>,
}

impl<'t> Founding<'t> {
    /// Begins with 云岭省 (990000) and its 春城市 (990100).
    pub async fn begin(t: &'t TestDb, now: chrono::DateTime<chrono::Utc>) -> Founding<'t> {
        let console = t.console();
        let mut founding = Founding {
            identity: &t.identity,
            tx: t.db.begin().await.unwrap(),
            org: console.grant(),
            accounts: console.grant(),
            roles: console.grant(),
            now,
        };
        founding.region("990000", "云岭省", None).await;
        founding.region("990100", "春城市", Some("990000")).await;
        founding
    }

    pub async fn region(&mut self, code: &str, name: &str, parent: Option<&str>) {
        let org = self.identity.organisation();
        org.create_region_in(&mut self.tx, &self.org, code, name, parent, self.now).await.unwrap();
    }

    pub async fn department(&mut self, code: &str, name: &str, region_code: &str, kind: &str) {
        let new = identity::NewDepartment { code, name, region_code, kind: Some(kind) };
        self.identity.organisation().create_department_in(&mut self.tx, &self.org, new, self.now).await.unwrap();
    }

    /// A staff member of `department` holding `role`; returns the account id.
    pub async fn staff(&mut self, username: &str, name: &str, department: &str, role: &str) -> String {
        let created = self.account(staff_account(username, name, department)).await;
        self.grant(&created, role).await;
        created
    }

    /// Grants `role` to an account.
    pub async fn grant(&mut self, account_id: &str, role: &str) {
        let accounts = self.identity.accounts();
        accounts.grant_role_in(&mut self.tx, &self.roles, account_id, role, self.now).await.unwrap();
    }

    /// Any account; returns its id.
    pub async fn account(&mut self, new: identity::NewAccount) -> String {
        let accounts = self.identity.accounts();
        accounts.create_account_in(&mut self.tx, &self.accounts, new, self.now).await.unwrap().id
    }

    pub async fn commit(self) {
        self.tx.commit().await.unwrap();
    }
}
