//! The calling system as the Information Mediator (an X-Road security server) names it:
//! the mediator authenticates the system; the platform records the name it vouches for.

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
                    && part_ok(member, false)
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
