//! Links in a message: host names found in its (standard-normalised) text, a domain
//! set matched by suffix (a banned `scam.com` bans `cdn.scam.com` too), and Discord
//! invite codes. Each lookup costs one hash probe per label of the host, whatever the
//! size of the set.

use std::collections::HashSet;

/// A domain as the set stores it: lower case, no scheme, path or trailing dot.
pub fn normalize_domain(text: &str) -> Option<String> {
    let text = text.trim().to_ascii_lowercase();
    let text = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(&text);
    let host = text
        .split(['/', '?', '#', ':'])
        .next()?
        .trim_end_matches('.');
    let host = host.strip_prefix("*.").unwrap_or(host);
    is_host(host).then(|| host.to_owned())
}

fn is_host(host: &str) -> bool {
    let mut labels = host.split('.');
    let tld = labels.next_back();
    host.len() <= 253
        && host.contains('.')
        && tld.is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()))
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[derive(Debug, Default, Clone)]
pub struct DomainSet {
    domains: HashSet<Box<str>>,
}

impl DomainSet {
    pub fn insert(&mut self, domain: &str) {
        if let Some(d) = normalize_domain(domain) {
            self.domains.insert(d.into_boxed_str());
        }
    }

    pub fn len(&self) -> usize {
        self.domains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The listed domain that `host` is, or is a subdomain of.
    pub fn matching<'a>(&'a self, host: &str) -> Option<&'a str> {
        let mut rest = host;
        loop {
            if let Some(d) = self.domains.get(rest) {
                return Some(d);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.domains.capacity() * (std::mem::size_of::<Box<str>>() + 8)
            + self.domains.iter().map(|d| d.len()).sum::<usize>()
    }
}

/// A host found in text, with what followed it (for invite codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link<'a> {
    pub host: &'a str,
    pub path: &'a str,
}

/// Every host-like token in `text` (already lower-cased): `example.com`,
/// `https://a.example.com/x`, `discord.gg/abc`. Cheap when there is no dot.
pub fn find_links(text: &str) -> impl Iterator<Item = Link<'_>> {
    let has_dot = text.contains('.');
    text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '(' | ')' | '"' | '\''))
        .filter(move |_| has_dot)
        .filter_map(|token| {
            let token = token
                .strip_prefix("https://")
                .or_else(|| token.strip_prefix("http://"))
                .unwrap_or(token);
            let end = token.find(['/', '?', '#', ':']).unwrap_or(token.len());
            let (host, path) = token.split_at(end);
            let host = host.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            is_host(host).then_some(Link { host, path })
        })
}

/// The invite code of a Discord invite link, if this is one.
pub fn invite_code<'a>(link: &Link<'a>) -> Option<&'a str> {
    let path = link.path.trim_start_matches('/');
    let code = match link.host {
        "discord.gg" | "www.discord.gg" => path,
        "discord.com" | "www.discord.com" | "discordapp.com" | "www.discordapp.com" => {
            path.strip_prefix("invite/")?
        }
        _ => return None,
    };
    let code = code.split(['/', '?', '#']).next()?;
    (!code.is_empty()).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_of_a_listed_domain_match() {
        let mut set = DomainSet::default();
        set.insert("scam.com");
        set.insert("https://Phish.example.org/login");
        assert_eq!(set.matching("scam.com"), Some("scam.com"));
        assert_eq!(set.matching("cdn.scam.com"), Some("scam.com"));
        assert_eq!(set.matching("notscam.com"), None);
        assert_eq!(set.matching("phish.example.org"), Some("phish.example.org"));
        assert_eq!(set.matching("example.org"), None);
    }

    #[test]
    fn hosts_are_found_in_text() {
        let hosts: Vec<&str> = find_links(
            "see https://a.b.example.com/x?y and (discord.gg/abc) or mail.ru. not a.b or 1.5",
        )
        .map(|l| l.host)
        .collect();
        assert_eq!(hosts, ["a.b.example.com", "discord.gg", "mail.ru"]);
    }

    #[test]
    fn invite_codes() {
        let links: Vec<Link> =
            find_links("discord.gg/rust https://discord.com/invite/abc x.com/invite/z").collect();
        let codes: Vec<Option<&str>> = links.iter().map(invite_code).collect();
        assert_eq!(codes, [Some("rust"), Some("abc"), None]);
    }

    #[test]
    fn domains_are_validated() {
        assert_eq!(normalize_domain("Example.COM."), Some("example.com".into()));
        assert_eq!(normalize_domain("*.scam.io"), Some("scam.io".into()));
        assert_eq!(normalize_domain("localhost"), None);
        assert_eq!(normalize_domain("bad_domain.com"), None);
    }
}
