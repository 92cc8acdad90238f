//! The calling system as the Information Mediator (an X-Road security server) names it, and
//! the same name once proven: by the system's exchange secret, or by the security server
//! the call came through (which authenticated the member with mutual TLS).

/// A calling system as the Information Mediator names it: `INSTANCE/CLASS/MEMBER/SUBSYSTEM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediatorClient(String);

impl MediatorClient {
    pub fn parse(header: &str) -> Option<MediatorClient> {
        let parts: Vec<&str> = header.split('/').collect();
        let part_ok = |p: &str, dash: bool| {
            !p.is_empty()
                && p.len() <= 64
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || (dash && c == '-'))
        };
        match parts.as_slice() {
            [instance, class, member, subsystem]
                if part_ok(instance, false)
                    && part_ok(class, false)
                    && part_ok(member, true)
                    && part_ok(subsystem, true) =>
            {
                Some(MediatorClient(header.to_string()))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a calling system proved its name (the header alone proves nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemProof {
    /// The secret of the exchange client registered under that name.
    Secret,
    /// A configured X-Road security server forwarded the call.
    SecurityServer,
}

/// A calling system whose name was proven.
#[derive(Debug, Clone)]
pub struct CallingSystem {
    name: String,
    proof: SystemProof,
}

impl CallingSystem {
    /// The name as the system sent it (written in access entries).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn proof(&self) -> SystemProof {
        self.proof
    }

    /// A system that sent the secret of the exchange client registered under this name
    /// (only the exchange, which keeps the secrets, checks that).
    pub fn proven_by_secret(name: String) -> CallingSystem {
        CallingSystem { name, proof: SystemProof::Secret }
    }

    /// A call a configured security server forwarded: it authenticated the member, so the
    /// header names the caller. Only the HTTP layer, which knows the peer, decides that.
    pub fn vouched_by_security_server(client: MediatorClient) -> CallingSystem {
        CallingSystem { name: client.as_str().to_string(), proof: SystemProof::SecurityServer }
    }

    /// A call a configured security server forwarded without naming the member, on an
    /// operation whose published API declares no client header. It is known only as the
    /// security server: the name (`security-server:ADDRESS`) is no mediator name, so no
    /// registry lists it.
    pub fn forwarded_by_security_server(address: std::net::IpAddr) -> CallingSystem {
        CallingSystem { name: format!("security-server:{address}"), proof: SystemProof::SecurityServer }
    }
}
